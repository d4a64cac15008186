"""The decision logic stays pure: rules/ never pulls in Faust, Kafka clients or Prometheus."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_rules_loads_no_framework() -> None:
    code = ("import sys, streams.rules.judge, streams.rules.policy, streams.rules.alerts, streams.codec; "
            "print(sorted(m for m in ('faust', 'aiokafka', 'prometheus_client', 'mode') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
