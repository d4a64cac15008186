"""``hcs run``: the whole system on one machine, for trying it out and for demos."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from streams.dev.localkafka import LocalKafka, die_with_parent, require_free_port
from streams.settings import ENV_BOOTSTRAP, Settings
from streams.times import local_time


def _wait_until_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 600.0,
                      every_s: float = 5.0) -> None:
    """Wait for the worker's ``/readyz`` (its own: the page names its pid, and another process on
    the port is not this run's worker); meanwhile say what it waits for, every ``every_s``."""
    deadline = time.monotonic() + timeout_s
    said = 0.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"hcs: the worker exited with code {proc.returncode}; see its log above")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as resp:
                body = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:  # 503: not ready yet
            body = json.loads(exc.read() or b"{}")
        except OSError:
            body = {}
        if body.get("pid") == proc.pid:
            if body.get("ready"):
                return
            if time.monotonic() - said >= every_s:
                said = time.monotonic()
                print(f"hcs: worker not ready yet: {_pending(body)}", flush=True)
        time.sleep(0.5)
    raise SystemExit(f"hcs: the worker was not ready at {base}/readyz within {timeout_s:.0f}s")


def _pending(readyz: dict[str, Any]) -> str:
    """What a /readyz body waits for, in words."""
    checks = readyz.get("checks", {})
    said = []
    for name in readyz.get("waiting_for", []):
        check = checks.get(name, {})
        detail = check.get("pending") or check.get("detail")
        if detail is None and check.get("waiting_for"):
            detail = "waits for " + ", ".join(check["waiting_for"])
        said.append(f"{name} ({detail})" if detail else name)
    return "; ".join(said) or "starting"


HEARTBEAT_S = 30.0  # `hcs run` says how it is going this often
_HEARTBEAT_SUMS = {"hcs_scans": "scans judged", "hcs_alerts": "alerts", "hcs_dead_letters": "dead letters",
                   "hcs_escalations": "escalations"}


def heartbeat(exposition: str, before: dict[str, float] | None, seconds: float) -> tuple[str, dict[str, float]]:
    """One line of how the run is going, from the worker's /metrics: totals of scans judged,
    alerts, dead letters and escalations to level 2 and 3 (with what came in since ``before``),
    open incidents."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = dict.fromkeys([*_HEARTBEAT_SUMS, "open"], 0.0)
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if family.name == "hcs_escalations" and sample.labels.get("level") == "1":
                continue  # a trigger's first notification, not an escalation
            if family.name in _HEARTBEAT_SUMS and sample.name.endswith("_total"):
                totals[family.name] += sample.value
            elif family.name == "hcs_incidents" and sample.labels.get("status") in ("TRIGGERED", "ACKNOWLEDGED"):
                totals["open"] += sample.value
    parts = []
    for name, words in _HEARTBEAT_SUMS.items():
        part = f"{totals[name]:,.0f} {words}"
        if before is not None and name == "hcs_scans":
            part += f" ({(totals[name] - before[name]) / seconds:,.0f}/s)"
        elif before is not None:
            part += f" (+{totals[name] - before[name]:,.0f})"
        parts.append(part)
    parts.append(f"{totals['open']:,.0f} incidents open")
    return f"hcs: {local_time(time.time())[11:]} " + ", ".join(parts), totals


MANAGED = 100  # key personnel on the simulated register: breaches and restrictions show in `hcs tail`
CASE_EVERY_S = 300  # a case reported every 5 minutes (the first 45 s in): traces and contacts stopped show
DEMO_PREFIX = "local-"  # the demo policy version's name: local-<when it takes effect>
SCHEDULED_IN_S = 120  # a policy version published at the start takes effect this long after


def _schedule_policy(env: dict[str, str], directory: Path) -> None:
    """Publish a policy version taking effect in two minutes (``hcs policy publish``), as an
    operator would: decisions name it from then on, and ``hcs policy list`` shows it scheduled.
    Once per broker: a later run does not override what an operator published meanwhile."""
    from streams.times import SHANGHAI

    listed = subprocess.run([sys.executable, "-m", "streams", "policy", "list"], env=env, capture_output=True,
                            text=True, check=False)
    demo = [line.split()[0] for line in listed.stdout.splitlines()[1:] if line.startswith(DEMO_PREFIX)]
    if demo:  # once per broker: a version an operator published since stays in force
        print(f"hcs: the demo policy version {demo[-1]} was published by an earlier run (once per broker); "
              "`hcs policy list` shows the versions", flush=True)
        return
    at = datetime.fromtimestamp(int(time.time()) + SCHEDULED_IN_S, SHANGHAI)
    name = f"{DEMO_PREFIX}{at:%Y%m%d-%H%M%S}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"schema": "hcs.policy.v1", "versions": [
        {"version": name, "valid_from": at.isoformat(), "defaults": {"fever_threshold_c": 37.2}}]}))
    done = subprocess.run([sys.executable, "-m", "streams", "policy", "publish", str(path), "--note",
                           "make run: a stricter fever threshold, scheduled"], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode == 0:
        print(f"hcs: policy version {name} (fever threshold 37.2) takes effect at {local_time(at.timestamp())[11:]}; "
              "`hcs policy list` shows it", flush=True)
    else:
        print(f"hcs: could not schedule a policy version: {done.stderr.strip()}", flush=True)


ENV_ROLES_DIR = "HCS_ROLES_DIR"  # a folder of <role>.env files (hcs broker start --secure): run under roles


def _as(env: dict[str, str], roles_dir: Path | None, role: str) -> dict[str, str]:
    """``env`` with the settings of ``role`` from the roles folder, if one is given."""
    from streams.dev.localkafka.secure import read_env_file

    if roles_dir is None:
        return env
    path = roles_dir / f"{role}.env"
    if not path.is_file():
        raise SystemExit(f"hcs: {path} does not exist: {ENV_ROLES_DIR} names the folder `hcs broker start --secure` "
                         "printed")
    return {**env, **read_env_file(path)}


def _say_heartbeat(base: str, before: dict[str, float] | None, seconds: float) -> dict[str, float] | None:
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            line, totals = heartbeat(resp.read().decode(), before, seconds)
    except OSError:
        print("hcs: the worker's /metrics did not answer", flush=True)
        return before
    print(line, flush=True)
    return totals


def run_local(rate: float, port: int) -> None:
    from streams.errors import HcsError
    from streams.settings.datadir import hold

    settings = Settings.from_env()
    try:
        hold(settings.data_dir, "hcs run", "one `make run` per checkout at a time; stop it (Ctrl-C in its terminal) "
             "or give this one another HCS_DATA_DIR and HCS_WEB_PORT")
    except HcsError as exc:
        raise SystemExit(f"hcs: {exc}") from None
    try:  # before a broker is started for nothing
        require_free_port("HCS_WEB_PORT", settings.web_bind, settings.web_port)
    except HcsError as exc:
        raise SystemExit(f"hcs: {exc}") from None
    roles = os.environ.get(ENV_ROLES_DIR)
    roles_dir = Path(roles) if roles else None
    # Under roles: the worker as `worker`; the simulator, which plays every device, the register,
    # inspectors, disease control and the on-call team, and the operator's policy, as the
    # development super user `admin`.
    env = _as(dict(os.environ), roles_dir, "admin")
    kafka: LocalKafka | None = None
    if roles_dir is not None:
        print(f"hcs: under roles from {roles_dir}: the worker as `worker`, the simulator and the policy as `admin` "
              f"(bootstrap {env[ENV_BOOTSTRAP]})", flush=True)
    elif not os.environ.get(ENV_BOOTSTRAP):
        kafka = LocalKafka(settings.data_dir / "broker", owned=True)
        status = kafka.status()
        if status.running:
            kafka = None  # another command's broker (`hcs broker start`): used, and left running after
            print(f"hcs: using the {status.describe().removeprefix('broker: ')} (left running)", flush=True)
        else:
            status = kafka.start(port=port)
            print(f"hcs: {status.describe()}", flush=True)
        env[ENV_BOOTSTRAP] = status.bootstrap or settings.bootstrap
    children: list[subprocess.Popen[bytes]] = []
    try:
        worker = subprocess.Popen([sys.executable, "-m", "streams", "worker", "-l", "warn"],
                                  env=_as(env, roles_dir, "worker"), preexec_fn=die_with_parent)
        children.append(worker)
        base = f"http://127.0.0.1:{settings.web_port}"
        _wait_until_ready(base, worker)
        print(f"hcs: worker ready; metrics at {base}/metrics", flush=True)
        _schedule_policy(env, settings.data_dir)
        children.append(subprocess.Popen(
            [sys.executable, "-m", "streams", "simulate", "--rate", str(rate), "--managed", str(MANAGED),
             "--case-every", str(CASE_EVERY_S), "--quiet"],
            env=env,
            preexec_fn=die_with_parent))
        print(f"hcs: simulating {rate:g} scans/s; `hcs tail` shows alerts; Ctrl-C stops", flush=True)
        print("hcs: the simulated on-call team acknowledges ~80% of incidents ~20 s after they trigger and "
              "resolves most later; the rest escalate (critical: level 2 at 5 min, 3 at 15): `hcs tail` shows "
              "each step, `hcs incidents --open` the open ones, `hcs ack ALERT_ID` acts", flush=True)
        said_at, totals = time.monotonic(), None
        while all(child.poll() is None for child in children):
            time.sleep(1)
            if time.monotonic() - said_at >= HEARTBEAT_S:
                totals = _say_heartbeat(base, totals, time.monotonic() - said_at)
                said_at = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT if child is not children[0] else signal.SIGTERM)
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        if kafka is not None:
            kafka.stop()
            print("hcs: broker stopped", flush=True)


# What the demo keeps in its data dir, and only that: HCS_DATA_DIR may name a folder with more in it.
_DEMO_STATE = ("broker", "worker", "alerts-bridge", "instance-id", f"{DEMO_PREFIX}*.json")


def reset_local() -> list[Path]:
    """``hcs reset`` (``make reset``): clear the demo's state in ``HCS_DATA_DIR`` (the local broker's
    data with every topic and changelog, the worker's and the bridge's tables, the instance id,
    the demo's policy files) so that the next ``make run`` starts as the first did; ``.venv`` and
    anything else are not touched. Refused while a run, a worker or the local broker uses it."""
    import shutil

    from streams.errors import HcsError
    from streams.settings.datadir import hold

    settings = Settings.from_env()
    if not settings.data_dir.is_dir():
        return []
    try:
        hold(settings.data_dir, "hcs run", "stop it first (Ctrl-C in its terminal)")
        hold(settings.data_dir, "hcs worker", "stop it first")
    except HcsError as exc:
        raise SystemExit(f"hcs: {exc}") from None
    status = LocalKafka(settings.data_dir / "broker").status()
    if status.running:
        raise SystemExit(f"hcs: the local broker of {settings.data_dir} runs (pid {status.pid}): "
                         "`hcs broker stop` first")
    removed = sorted({path for pattern in _DEMO_STATE for path in settings.data_dir.glob(pattern)})
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed
