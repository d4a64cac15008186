"""``hcs bench`` with its own broker: the broker's data never outlives the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from benchmarks import run
from streams.errors import HcsError


class FakeKafka:
    """A local broker that leaves what a real one does in its state dir."""

    made: list[FakeKafka] = []

    def __init__(self, state_dir: Path, **_: Any) -> None:
        self.state_dir = state_dir
        self.stopped = False
        FakeKafka.made.append(self)

    def start(self, port: int) -> Any:
        (self.state_dir / "data").mkdir()
        (self.state_dir / "data" / "segment.log").write_bytes(b"x" * 1024)
        (self.state_dir / "logs").mkdir()
        (self.state_dir / "logs" / "broker.log").write_text("started\n")
        return type("Status", (), {"bootstrap": f"127.0.0.1:{port}"})()

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture()
def tmp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("HCS_BOOTSTRAP", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    monkeypatch.setattr(run, "LocalKafka", FakeKafka)
    FakeKafka.made.clear()
    return tmp_path


def _run(tmp_root: Path) -> Any:
    return CliRunner().invoke(run.main, ["--scans", "10", "--out", str(tmp_root / "out" / "b.json")])


def test_a_finished_benchmark_removes_its_broker_dir(tmp_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "run_benchmark", lambda *a, **k: {"figures": "fake"})
    monkeypatch.setattr(run, "table", lambda report: "TABLE")
    result = _run(tmp_root)
    assert result.exit_code == 0, result.output
    assert "TABLE" in result.output
    assert list(tmp_root.glob("hcs-bench-*")) == []
    assert [kafka.stopped for kafka in FakeKafka.made] == [True]


def test_a_failed_benchmark_removes_the_broker_data_and_keeps_its_logs(
        tmp_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise HcsError("the broker went away")

    monkeypatch.setattr(run, "run_benchmark", fail)
    result = _run(tmp_root)
    assert result.exit_code == 1
    [state] = tmp_root.glob("hcs-bench-*")
    assert not (state / "data").exists()
    assert (state / "logs" / "broker.log").read_text() == "started\n"
    assert str(state / "logs") in result.output
    assert [kafka.stopped for kafka in FakeKafka.made] == [True]
