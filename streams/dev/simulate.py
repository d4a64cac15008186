"""Simulated checkpoint traffic for Hangzhou: realistic scans, entry counts and faulty records.

The world (districts, venues, checkpoints, people) and every scan come from one seeded RNG, so a
seed reproduces the same stream. Person references are made as devices must make them, with
:func:`streams.dev.device.person_ref` over a synthetic ID; no real identity is ever generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from streams.dev.device import person_ref
from streams.dev.responder import Responder, respond
from streams.times import SHANGHAI

CASE_FIRST_S = 45.0  # the simulator's first case report, this long after it started

DISTRICTS = {
    "330102": "Shangcheng", "330105": "Gongshu", "330106": "Xihu",
    "330108": "Binjiang", "330109": "Xiaoshan", "330110": "Yuhang",
}
# Rough share of scans by venue type at a city's checkpoints.
VENUE_WEIGHTS = {
    "mall": 18, "supermarket": 18, "office": 14, "transport_hub": 10, "school": 7, "kindergarten": 3,
    "hospital": 7, "hotel": 6, "government": 5, "nursing_home": 3, "isolation_point": 2, "other": 7,
}
CITIES = ["Hangzhou", "Shanghai", "Ningbo", "Suzhou", "Nanjing", "Wenzhou", "Shaoxing", "Jiaxing"]
SIM_KEY = b"hcs-simulator-key-not-a-secret!!"
# Management plans of key personnel, by share: (label, phases).
PLANS = (
    (0.6, "14+7+7", (("centralized_isolation", 14), ("home_isolation", 7), ("health_monitoring", 7))),
    (0.3, "7+3", (("centralized_isolation", 7), ("health_monitoring", 3))),
    (0.1, "2+14", (("home_isolation", 2), ("health_monitoring", 14))),
)
RELEASED_SHARE = 0.1  # plans the register sends as released (management ended early)
AT_OWN_POINT = 0.7  # a resident in centralized isolation scanned: at their own point, mostly
CHECK_HOURS = (8, 20)  # an isolation point's staff check each resident's temperature then
SAMPLE_HOUR = 9  # and take the NAT samples due
NAT_DAYS = (1, 4, 7, 14)  # the packaged policy's nat_schedule_days
OBSERVED_DAYS_BACK = 2  # a run starts with the staff devices uploading the last two days
RETRY_S, MAX_RETRY_S = 1.0, 30.0  # resending what a cluster gone away did not take: backoff
INSPECTION_EVERY_S = 20.0  # an inspector opens a finding about this often (on average)
RECTIFIED_SHARE, VERIFIED_SHARE, REJECTED_SHARE = 0.8, 0.8, 0.15  # of the findings opened, rectified, ...
FOLLOW_UP_S = (20.0, 90.0)  # a venue rectifies, a supervisor verifies, this long after the previous step
PROBLEMS = ("THREE_100", "CODE_CHECK", "TEMPERATURE", "MASK", "OTHER")


@dataclass(frozen=True)
class Mix:
    """Share of scans (0..1) with each kind of finding or fault."""

    red: float = 0.002
    yellow: float = 0.006
    unknown: float = 0.002
    popup: float = 0.004
    nat_missing: float = 0.02
    nat_expired: float = 0.03
    nat_pending: float = 0.02
    nat_positive: float = 0.0005
    unvaccinated: float = 0.03
    risk_itinerary: float = 0.01
    fever: float = 0.004
    temp_not_measured: float = 0.01
    no_mask: float = 0.01
    mask_not_observed: float = 0.01
    duplicate: float = 0.005
    late: float = 0.01
    malformed: float = 0.001
    unscanned: float = 0.02  # people counted at a checkpoint who were not scanned (code misses)
    observation_missed: float = 0.05  # an isolation point's scheduled temperature check not taken
    nat_sample_missed: float = 0.1  # a resident's scheduled NAT sample not taken
    resident_fever: float = 0.01


@dataclass(frozen=True)
class Venue:
    venue_id: str
    venue_type: str
    district: str
    checkpoints: tuple[str, ...]


@dataclass
class Simulator:
    seed: int = 7
    venues_per_district: int = 25
    people: int = 20_000
    mix: Mix = field(default_factory=Mix)
    key: bytes = SIM_KEY
    # In every event id: the worker remembers ids for its dedup horizon, so a second run of the
    # same seed must bring new ids (``hcs simulate`` makes one per run); the content stays the seed's.
    run_id: str = ""
    # People (of ``people``) under management on the key-personnel register: :meth:`plans`.
    managed: int = 0
    # A case reported every this many seconds (0: none), the first 45 s in (or sooner): :meth:`cases`.
    case_every_s: float = 0.0

    def __post_init__(self) -> None:
        self._run = f"{self.run_id}-" if self.run_id else ""  # the event ids' run part
        self.rng = random.Random(self.seed)
        types, weights = zip(*VENUE_WEIGHTS.items(), strict=True)
        self.venues: list[Venue] = []
        for district in DISTRICTS:
            for i in range(self.venues_per_district):
                vtype = self.rng.choices(types, weights)[0]
                vid = f"{district}-{vtype[:4]}-{i:03d}"
                cps = tuple(f"{vid}-cp{j}" for j in range(1, self.rng.randint(1, 4) + 1))
                self.venues.append(Venue(vid, vtype, district, cps))
        self._refs: dict[int, str] = {}
        self.counts: Counter[str] = Counter()
        self._seq = 0
        self._recent: list[tuple[bytes, bytes]] = []
        self._passed: Counter[tuple[str, float]] = Counter()  # (checkpoint, minute) -> scans
        self._reported_before = float("-inf")  # counter minutes ending by then were reported
        for district in DISTRICTS:  # every district runs a centralized isolation point (no random draw)
            if not any(v.district == district and v.venue_type == "isolation_point" for v in self.venues):
                vid = f"{district}-isol-{self.venues_per_district:03d}"
                self.venues.append(Venue(vid, "isolation_point", district, (f"{vid}-cp1",)))
        self._venue_of: dict[str, Venue] = {cp: v for v in self.venues for cp in v.checkpoints}
        self._points = [v for v in self.venues if v.venue_type == "isolation_point"]
        self._isolated_at: dict[int, tuple[Venue, float, float]] = {}  # person -> (point, from, until)
        self._observed_until: float | None = None  # staff observations sent up to then
        self.inspections = Inspections(self.venues, self.seed, self._run, self.counts, self.next_seq)
        self._scanned: dict[int, float] = {}  # person -> when last scanned (the candidates for a case)
        self._next_case_at: float | None = None
        self._case_rng = random.Random(self.seed + 1)  # cases fall due by the wall clock: not the scans' draws

    def _person(self, n: int) -> str:
        ref = self._refs.get(n)
        if ref is None:
            # A synthetic ID that cannot collide with a real 18-digit resident ID number.
            ref = self._refs[n] = person_ref(f"SIM{self.seed:04d}{n:010d}", self.key)
        return ref

    def plans(self, today: datetime) -> Iterator[tuple[bytes, bytes]]:
        """The register's records (``hcs.management.v1``) of the first :attr:`managed` people: a
        mix of 14+7+7, 7+3 and 2+14 at every point of their plan around ``today`` (some on
        their last day, some not started, some over), a few released. Those people are scanned
        like anyone else, so some breach their isolation and some are restricted."""
        rng = random.Random(self.seed * 7919 + 1)  # its own stream: the scans stay the seed's
        day0 = today.astimezone(SHANGHAI).date()
        shares = [share for share, _, _ in PLANS]
        for n in range(min(self.managed, self.people)):
            _, label, phases = rng.choices(PLANS, shares)[0]
            total = sum(days for _, days in phases)
            # Day 1 from total+1 days ago (the plan just over) to tomorrow (not started yet);
            # every tenth on its last day.
            back = total - 1 if n % 10 == 0 else rng.randint(-1, total)
            start = day0 - timedelta(days=back)
            point = rng.choice(self._points) if phases[0][0] == "centralized_isolation" else None
            released = rng.random() < RELEASED_SHARE
            if point is not None and not released:
                begins = datetime(start.year, start.month, start.day, tzinfo=SHANGHAI)
                self._isolated_at[n] = (point, begins.timestamp(),
                                        (begins + timedelta(days=phases[0][1])).timestamp())
            ref = self._person(n)
            self.counts["plans_released" if released else "plans"] += 1
            yield ref.encode(), orjson.dumps({
                "schema": "hcs.management.v1", "plan_id": f"sim-plan-{self.seed}-{n:06d}", "person_ref": ref,
                "district": rng.choice(list(DISTRICTS)), "plan": label, "start_date": start.isoformat(),
                "phases": [{"kind": kind, "days": days} for kind, days in phases],
                "isolation_point_id": point.venue_id if point else None,
                "status": "released" if released else "active", "updated_at": today.isoformat()})

    def observations(self, now: datetime) -> Iterator[tuple[bytes, bytes]]:
        """The isolation points' staff observations (``hcs.observation.v1``) due by ``now`` and not
        sent yet: each resident of a point (a managed person in centralized isolation there, see
        :meth:`plans`) gets temperature checks at 08:00 and 20:00 and a NAT sample at 09:00 on
        the days of the schedule, a share of them missed (:class:`Mix`). The first call also
        sends the last two days', as staff devices uploading their buffer."""
        rng, mix = self.rng, self.mix
        end = now.timestamp()
        since = self._observed_until
        if since is None:
            start = now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
            since = (start - timedelta(days=OBSERVED_DAYS_BACK)).timestamp()
        self._observed_until = end
        day = datetime.fromtimestamp(since, SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
        while day.timestamp() <= end:
            slots = [(day + timedelta(hours=h), "temperature") for h in CHECK_HOURS]
            slots.append((day + timedelta(hours=SAMPLE_HOUR), "nat_sample"))
            for at, kind in sorted(slots):
                t = at.timestamp()
                if not since <= t < end:
                    continue
                for n, (point, begins, until) in sorted(self._isolated_at.items()):
                    if not begins <= t < until:
                        continue
                    phase_day = int((t - begins) // 86400) + 1
                    if kind == "nat_sample" and phase_day not in NAT_DAYS:
                        continue
                    if rng.random() < (mix.observation_missed if kind == "temperature" else mix.nat_sample_missed):
                        self.counts[f"{kind}_missed"] += 1
                        continue
                    self._seq += 1
                    value: dict[str, Any] = {
                        "schema": "hcs.observation.v1", "event_id": f"obs-{self.seed}-{self._run}{self._seq:012d}",
                        "isolation_point_id": point.venue_id, "district": point.district,
                        "person_ref": self._person(n), "kind": kind,
                        "observed_at": (at + timedelta(minutes=rng.uniform(0, 30))).isoformat(timespec="seconds")}
                    if kind == "temperature":
                        value["temperature_c"] = (round(rng.uniform(37.3, 38.5), 1) if rng.random() < mix.resident_fever
                                                  else round(rng.gauss(36.5, 0.2), 1))
                    else:
                        value["nat_result"] = "negative"
                    self.counts["observations"] += 1
                    yield point.venue_id.encode(), orjson.dumps(value)
            day += timedelta(days=1)

    def findings(self, now: datetime) -> Iterator[tuple[bytes, bytes]]:
        """Inspectors' and supervisors' actions due by ``now`` (:class:`Inspections`)."""
        return self.inspections.due(now)

    def cases(self, now: datetime) -> Iterator[tuple[bytes, bytes]]:
        """A case report (``hcs.cases.v1``) when one is due: a person scanned in the last hour,
        sampled two hours ago. The people who shared a venue with them keep scanning, so the
        worker's trace and its contacts stopped at their next scans show within a minute."""
        t = now.timestamp()
        if not self.case_every_s:
            return
        if self._next_case_at is None:
            self._next_case_at = t + min(CASE_FIRST_S, self.case_every_s)
        if t < self._next_case_at:
            return
        self._next_case_at = t + self.case_every_s
        recent = sorted(p for p, at in self._scanned.items() if at >= t - 3600)
        self._scanned = {p: at for p, at in self._scanned.items() if at >= t - 3600}
        if not recent:
            return
        rng = self._case_rng
        person = rng.choice(recent)
        self.counts["cases"] += 1
        case_id = f"sim-case-{self.seed}-{self._run}{self.next_seq():06d}"
        ref = self._person(person)
        value = {"schema": "hcs.case.v1", "event_id": case_id, "case_id": case_id, "person_ref": ref,
                 "district": rng.choice(sorted(DISTRICTS)),
                 "classification": rng.choice(["confirmed", "asymptomatic"]),
                 "sampled_at": (now - timedelta(hours=2)).isoformat(), "onset_at": None,
                 "reported_at": now.isoformat()}
        yield ref.encode(), orjson.dumps(value)

    def next_seq(self) -> int:
        """The next number of the run's event ids (one sequence for every kind of record)."""
        self._seq += 1
        return self._seq

    def scan(self, now: datetime) -> tuple[Venue, dict[str, Any]]:
        """One scan at ``now`` (or earlier, for a late upload), as a JSON-ready dict."""
        rng, mix = self.rng, self.mix
        venue = rng.choice(self.venues)
        person = rng.randrange(self.people)
        isolated = self._isolated_at.get(person) if self._isolated_at else None
        if isolated is not None and isolated[1] <= now.timestamp() < isolated[2] and rng.random() < AT_OWN_POINT:
            venue = isolated[0]  # a resident of a centralized isolation point, scanned there
        self._seq += 1
        at = now - timedelta(minutes=rng.uniform(6, 90)) if rng.random() < mix.late else now
        color = _color(rng, mix)
        nat = _nat(rng, mix, at)
        doses = rng.choice([0, 1]) if rng.random() < mix.unvaccinated else rng.choice([2, 3, 3, 4])
        cities = [{"name": "Hangzhou", "starred": False, "last_seen_at": at.isoformat()}]
        if rng.random() < mix.risk_itinerary:
            cities.append({"name": rng.choice(CITIES[1:]), "starred": True,
                           "last_seen_at": (at - timedelta(days=rng.randint(1, 13))).isoformat()})
        temp, mask = _temperature_and_mask(rng, mix)
        value: dict[str, Any] = {
            "schema": "hcs.scan.v1",
            "event_id": f"sim-{self.seed}-{self._run}{self._seq:012d}",
            "event_time": at.isoformat(timespec="milliseconds"),
            "checkpoint_id": rng.choice(venue.checkpoints),
            "venue_id": venue.venue_id,
            "venue_type": venue.venue_type,
            "district": venue.district,
            "person_ref": self._person(person),
            "health_code": {"color": color, "popup": rng.random() < mix.popup},
            "temperature_c": temp,
            "mask": mask,
            "nat": nat,
            "vaccination": {"doses": doses, "last_dose_at": None if doses == 0 else
                            (at - timedelta(days=rng.randint(30, 400))).isoformat(), "exemption": False},
            "itinerary": {"as_of": at.isoformat(), "cities": cities},
        }
        if self.case_every_s:
            self._scanned[person] = at.timestamp()
        minute = (at.timestamp() // 60) * 60
        if minute + 60 > self._reported_before:  # a late upload's person was counted when passing
            self._passed[(value["checkpoint_id"], minute)] += 1
        return venue, value

    def entry_counts(self, before: float) -> Iterator[tuple[bytes, bytes]]:
        """People counters' records for every checkpoint minute that ended before ``before``:
        the people scanned there, plus the occasional person who passed unscanned."""
        self._reported_before = max(self._reported_before, before)
        for (checkpoint, minute), scanned in sorted(self._passed.items()):
            if minute + 60 > before:
                continue
            del self._passed[(checkpoint, minute)]
            venue = self._venue_of[checkpoint]
            unscanned = sum(self.rng.random() < self.mix.unscanned for _ in range(scanned))
            start = datetime.fromtimestamp(minute, SHANGHAI)
            self.counts["entry_counts"] += 1
            yield venue.venue_id.encode(), orjson.dumps({
                "schema": "hcs.entries.v1", "event_id": f"count-{self.seed}-{self._run}{checkpoint}-{int(minute)}",
                "checkpoint_id": checkpoint, "venue_id": venue.venue_id, "venue_type": venue.venue_type,
                "district": venue.district, "window_start": start.isoformat(),
                "window_end": (start + timedelta(minutes=1)).isoformat(), "entries": scanned + unscanned})

    def records(self, count: int | None, batch: int = 1,
                clock: Iterator[datetime] | None = None) -> Iterator[tuple[bytes, bytes, int]]:
        """(key, value, scans in it) for ``count`` scans (forever if None), ``batch`` per record.

        Duplicates resend an earlier record as is; malformed records are broken copies.
        """
        produced = 0
        while count is None or produced < count:
            now = next(clock) if clock is not None else datetime.now(SHANGHAI)
            rng = self.rng
            if self._recent and rng.random() < self.mix.duplicate:
                key, value = rng.choice(self._recent)
                self.counts["duplicate_records"] += 1
                yield key, value, 0
                continue
            if rng.random() < self.mix.malformed:
                self.counts["malformed_records"] += 1
                yield b"unknown", rng.choice([b"{\"schema\": \"hcs.scan.v1\", ", b"\xff\xfe",
                                              b"{\"schema\": \"hcs.scan.v0\"}"]), 0
                continue
            n = batch if count is None else min(batch, count - produced)
            if n == 1:
                venue, one = self.scan(now)
                encoded = orjson.dumps(one)
            else:
                venue, first = self.scan(now)
                scans = [first]
                while len(scans) < n:
                    # A gateway forwards the scans of its own venue only.
                    _, more = self.scan(now)
                    more.update(venue_id=venue.venue_id, venue_type=venue.venue_type,
                                 district=venue.district, checkpoint_id=self.rng.choice(venue.checkpoints))
                    scans.append(more)
                encoded = orjson.dumps({"schema": "hcs.scan-batch.v1", "gateway_id": f"gw-{venue.venue_id}",
                                        "scans": scans})
            key = venue.venue_id.encode()
            produced += n
            self.counts["scans"] += n
            self.counts["records"] += 1
            if len(self._recent) < 1000:
                self._recent.append((key, encoded))
            else:
                self._recent[rng.randrange(1000)] = (key, encoded)
            yield key, encoded, n


class Inspections:
    """Inspectors' and supervisors' actions (``hcs.finding-event.v1``) at the simulator's venues,
    from a random stream of their own (the scans stay the seed's)."""

    def __init__(self, venues: list[Venue], seed: int, run: str, counts: Counter[str],
                 next_seq: Callable[[], int]) -> None:
        self.venues, self.seed, self._run, self.counts, self.next_seq = venues, seed, run, counts, next_seq
        self.rng = random.Random(seed * 104729 + 3)
        self._follow_ups: list[tuple[float, int, dict[str, Any]]] = []  # (due, order, step) to send then
        self._order = itertools.count()
        self._findings = 0
        self._next_inspection: float | None = None  # when the next inspector's finding is opened

    def due(self, now: datetime) -> Iterator[tuple[bytes, bytes]]:
        """Inspectors' and supervisors' actions (``hcs.finding-event.v1``) due by ``now``. The
        first call sends the last two weeks' inspections of each district: one closed by its
        look-back, one overdue, one verified (its venue's next three 100% violation reopens it)
        and one waiting for verification. Then an inspector opens a finding about every
        :data:`INSPECTION_EVERY_S`; most are rectified a little later, most of those verified, a
        few rejected first."""
        rng, end = self.rng, now.timestamp()
        if self._next_inspection is None:
            self._next_inspection = end + rng.expovariate(1 / INSPECTION_EVERY_S)
            day, hour = 86400.0, 3600.0
            history = (("THREE_100", ((-12 * day, "open"), (-11 * day, "rectify"), (-10 * day, "verify"))),
                       ("TEMPERATURE", ((-3 * day, "open"),)),
                       ("THREE_100", ((-4 * day, "open"), (-3 * day, "rectify"), (-2 * day, "verify"))),
                       ("MASK", ((-day, "open"), (-2 * hour, "rectify"))))
            for district in DISTRICTS:
                busy = [v for v in self.venues if v.district == district and v.venue_type != "isolation_point"]
                for problem, steps in history:
                    venue, finding_id = rng.choice(busy), self._finding_id()
                    for back, action in steps:
                        yield self._finding_event(venue, finding_id, action, end + back, problem)
        while self._next_inspection <= end:
            venue = rng.choice([v for v in self.venues if v.venue_type != "isolation_point"])
            finding_id, at = self._finding_id(), self._next_inspection
            self._next_inspection += rng.expovariate(1 / INSPECTION_EVERY_S)
            yield self._finding_event(venue, finding_id, "open", at, rng.choice(PROBLEMS))
            plan = []
            if rng.random() < RECTIFIED_SHARE:
                plan.append("rectify")
                if rng.random() < REJECTED_SHARE:
                    plan += ["reject", "rectify"]
                if rng.random() < VERIFIED_SHARE:
                    plan.append("verify")
            for action in plan:
                at += rng.uniform(*FOLLOW_UP_S)
                heapq.heappush(self._follow_ups, (at, next(self._order),
                                                  {"venue": venue, "finding_id": finding_id, "action": action}))
        while self._follow_ups and self._follow_ups[0][0] <= end:
            at, _, step = heapq.heappop(self._follow_ups)
            yield self._finding_event(step["venue"], step["finding_id"], step["action"], at)

    def _finding_id(self) -> str:
        self._findings += 1
        return f"sim-{self.seed}-{self._run}{self._findings:06d}"

    def _finding_event(self, venue: Venue, finding_id: str, action: str, at: float,
                       problem: str | None = None) -> tuple[bytes, bytes]:
        seq = self.next_seq()
        self.counts[f"findings_{action}"] += 1
        value: dict[str, Any] = {
            "schema": "hcs.finding-event.v1", "event_id": f"fe-{self.seed}-{self._run}{seq:012d}",
            "finding_id": finding_id, "venue_id": venue.venue_id, "venue_type": venue.venue_type,
            "district": venue.district, "action": action,
            "at": datetime.fromtimestamp(at, SHANGHAI).isoformat(timespec="seconds")}
        if problem is not None:
            value["problem"] = problem
        return venue.venue_id.encode(), orjson.dumps(value)


async def publish(sim: Simulator, client: Mapping[str, Any], topic: str, count: int | None, rate: float | None,
                  batch: int = 1, on_progress: Callable[[int], None] | None = None,
                  entries_topic: str | None = None, management_topic: str | None = None,
                  observations_topic: str | None = None, findings_topic: str | None = None,
                  cases_topic: str | None = None, oncall: tuple[Responder, str, str] | None = None) -> Counter[str]:
    """Send ``count`` scans (forever if None) to ``topic``, at ``rate`` scans/s or as fast as possible,
    and to ``entries_topic`` each checkpoint's people count once its minute is over; first, to
    ``management_topic``, the register's plans of the simulator's managed people; and to
    ``observations_topic`` the isolation points' staff observations of their residents as they
    fall due; to ``findings_topic`` inspectors' findings and what follows them
    (:meth:`Simulator.findings`); to ``cases_topic`` a case now and then (:meth:`Simulator.cases`);
    with ``oncall`` (a responder, the incidents topic, the actions topic), the on-call team's acks
    and resolves of the incidents raised meanwhile (:mod:`streams.dev.responder`).

    As a device does, it outlives a cluster gone away: records that could not be delivered are
    sent again, with backoff, once it is back (one line when it is lost, one when it is back).
    A stop (SIGINT, SIGTERM) meanwhile ends the run, and the summary counts what was never
    delivered (``undelivered_records``).
    """
    from aiokafka import AIOKafkaProducer

    from streams.kafka.health import watched

    producer = AIOKafkaProducer(**client, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024, compression_type=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)  # finish cleanly: flush what was sent, then report
    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # a refused or unreachable cluster: close what the start opened
        raise
    out = _Delivery(producer, stop)
    responding, finished = None, asyncio.Event()
    if oncall is not None:
        responder, incidents_topic, actions_topic = oncall

        async def act(key: bytes, value: bytes) -> None:
            await out.send(actions_topic, key, value)

        responding = asyncio.create_task(respond(responder, client, incidents_topic, act, finished))
    try:
        async with watched(f"Kafka at {client.get('bootstrap_servers')}") as watch:
            if management_topic and sim.managed:
                for key, value in sim.plans(datetime.now(SHANGHAI)):
                    await out.send(management_topic, key, value)
                await out.settle()  # the register first, as it would be before the scans
            await _send_scans(sim, out, stop, topic, count, rate, batch, on_progress, entries_topic,
                              observations_topic, findings_topic, cases_topic)
            if entries_topic and not stop.is_set():
                for key, value in sim.entry_counts(float("inf")):
                    await out.send(entries_topic, key, value)
            if await out.settle():
                watch.check(answered=True)  # all delivered: the cluster is back, if it was away
    finally:
        if responding is not None and oncall is not None:
            finished.set()
            with contextlib.suppress(Exception):
                await responding
            sim.counts.update(oncall[0].counts)
        if out.undelivered:
            sim.counts["undelivered_records"] += out.undelivered
        await producer.stop()
    return sim.counts


async def _send_scans(sim: Simulator, out: _Delivery, stop: asyncio.Event, topic: str, count: int | None,
                      rate: float | None, batch: int, on_progress: Callable[[int], None] | None,
                      entries_topic: str | None, observations_topic: str | None, findings_topic: str | None,
                      cases_topic: str | None = None) -> None:
    """The scans at ``rate``, and what falls due meanwhile: people counts, observations, findings, cases."""
    started = time.monotonic()
    sent = 0
    for key, value, n in sim.records(count, batch):
        if stop.is_set():
            break
        await out.send(topic, key, value)
        sent += n
        if on_progress is not None and n:
            on_progress(n)
        if rate:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        due: list[tuple[str, Iterator[tuple[bytes, bytes]]]] = []
        if entries_topic and sent % 500 < n:
            due.append((entries_topic, sim.entry_counts(time.time())))
        if observations_topic and sent % 100 < n:
            due.append((observations_topic, sim.observations(datetime.now(SHANGHAI))))
        if findings_topic and sent % 100 < n:
            due.append((findings_topic, sim.findings(datetime.now(SHANGHAI))))
        if cases_topic and sent % 100 < n:
            due.append((cases_topic, sim.cases(datetime.now(SHANGHAI))))
        for to, records in due:
            for key, value in records:
                await out.send(to, key, value)
        if len(out.pending) >= 5000:
            await out.settle()


def _color(rng: random.Random, mix: Mix) -> str:
    r = rng.random()
    if r < mix.red:
        return "red"
    if r < mix.red + mix.yellow:
        return "yellow"
    if r < mix.red + mix.yellow + mix.unknown:
        return "unknown"
    return "green"


def _nat(rng: random.Random, mix: Mix, at: datetime) -> dict[str, object] | None:
    r = rng.random()
    if r < mix.nat_missing:
        return None
    if r < mix.nat_missing + mix.nat_positive:
        return {"result": "positive", "sampled_at": (at - timedelta(hours=10)).isoformat(), "reported_at": None}
    if r < mix.nat_missing + mix.nat_positive + mix.nat_pending:
        return {"result": "pending", "sampled_at": (at - timedelta(hours=rng.uniform(1, 30))).isoformat(),
                "reported_at": None}
    expired = rng.random() < mix.nat_expired
    age = rng.uniform(73, 120) if expired else rng.uniform(1, 47)
    return {"result": "negative", "sampled_at": (at - timedelta(hours=age)).isoformat(),
            "reported_at": (at - timedelta(hours=age - 0.5)).isoformat()}


def _temperature_and_mask(rng: random.Random, mix: Mix) -> tuple[float | None, bool | None]:
    r = rng.random()
    temp: float | None = round(rng.gauss(36.5, 0.25), 1)
    if r < mix.temp_not_measured:
        temp = None
    elif r < mix.temp_not_measured + mix.fever:
        temp = round(rng.uniform(37.3, 39.5), 1)
    r = rng.random()
    mask: bool | None = True
    if r < mix.no_mask:
        mask = False
    elif r < mix.no_mask + mix.mask_not_observed:
        mask = None
    return temp, mask


class _Delivery:
    """Records sent and not yet acknowledged; those the cluster did not take are sent again."""

    def __init__(self, producer: Any, stop: asyncio.Event) -> None:
        self.producer = producer
        self.stop = stop
        self.pending: list[tuple[asyncio.Future[object], str, bytes, bytes]] = []
        self.undelivered = 0

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        from aiokafka.errors import KafkaError

        wait = RETRY_S
        while True:
            try:  # the producer's buffer is full while the cluster is away: this times out
                future = await self.producer.send(topic, value=value, key=key)
            except KafkaError as exc:
                if not _retriable(exc) or await self._stopped_within(wait):
                    self.undelivered += 1
                    if not _retriable(exc):
                        raise
                    return
                wait = min(wait * 2, MAX_RETRY_S)
                continue
            self.pending.append((future, topic, key, value))
            return

    async def settle(self) -> bool:
        """Wait for every pending record; send the failed ones again until all are delivered
        (True), or the run is stopped (False: they are counted as undelivered)."""
        wait = RETRY_S
        while self.pending:
            batch, self.pending = self.pending, []
            results = await asyncio.gather(*(future for future, *_ in batch), return_exceptions=True)
            failed = []
            for (_, topic, key, value), result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    if not _retriable(result):
                        raise result
                    failed.append((topic, key, value))
            if not failed:
                break
            if await self._stopped_within(wait):
                self.undelivered += len(failed)
                return False
            wait = min(wait * 2, MAX_RETRY_S)
            for topic, key, value in failed:
                await self.send(topic, key, value)
        return self.undelivered == 0

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            return False
        return True


def _retriable(exc: BaseException) -> bool:
    """A cluster away for longer than the producer's own retries: its errors say so."""
    from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

    return isinstance(exc, (KafkaTimeoutError, KafkaConnectionError)) or (
        isinstance(exc, KafkaError) and exc.retriable)
