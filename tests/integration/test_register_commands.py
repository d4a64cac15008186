"""`hcs register show|put|release` on a real broker: checked as the worker checks it, pseudonyms only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams import cli
from tests import factories as f
from tests.integration.kafka_io import create_topics

pytestmark = pytest.mark.integration


def hcs(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.cli, list(args), env=env)
    return result.exit_code, result.output


def test_put_show_and_release_a_persons_plan(worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str,
                                             tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    ref = f.pseudonym(4242)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(f.plan(ref)))
    assert hcs(worker_env, "register", "put", str(plan)) == (0, f"{ref}: plan plan-1 written\n")
    code, shown = hcs(worker_env, "register", "show", ref)
    assert code == 0 and shown.splitlines() == [
        f"{ref}: plan plan-1 14+7+7, managed by district 330105, isolation point iso-1",
        "  centralized_isolation  2022-05-10 to 2022-05-23 (14 days)",
        "  home_isolation         2022-05-24 to 2022-05-30 (7 days)",
        "  health_monitoring      2022-05-31 to 2022-06-06 (7 days)"]
    assert hcs(worker_env, "register", "release", ref) == (0, f"{ref}: released\n")
    assert hcs(worker_env, "register", "show", ref)[1] == f"{ref}: not on the register (never, or released)\n"
    code, refused = hcs(worker_env, "register", "release", ref)
    assert code == 1 and "is not on the register" in refused

    id_number = f.valid_id_number("330106", "19900101", "123")
    plan.write_text(json.dumps(f.plan(id_number)))
    code, refused = hcs(worker_env, "register", "put", str(plan))
    assert code == 1 and refused.count("\n") == 1 and "person_ref: must be" in refused and id_number not in refused
    for command in ("release", "show"):
        code, refused = hcs(worker_env, "register", command, id_number)
        assert code == 1 and id_number not in refused and "person_ref: must be" in refused
    digits = f.valid_id_number("330106", "19900101", "124")  # one of them ends in a digit: hex-looking
    assert all(hcs(worker_env, "register", "release", n)[0] == 1 for n in (digits, digits.lower()))
