"""Local broker helpers that need no broker."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from streams.dev.localkafka import cluster_id


def test_cluster_ids_are_22_char_uuids_never_starting_with_a_dash() -> None:
    ids = [cluster_id() for _ in range(5000)]  # about 1 in 64 random ids would start with "-"
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)


def test_the_first_jar_fetch_says_what_it_fetches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import shutil
    import subprocess

    from streams.dev import localkafka

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/mvn")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "", ""))
    libs = localkafka.resolve_jars(tmp_path)
    assert (libs / ".complete").is_file()
    said = capsys.readouterr().err
    assert said.startswith("hcs: fetching the Apache Kafka broker jars with Maven into ") and said.count("\n") == 1
    localkafka.resolve_jars(tmp_path)  # cached: nothing to say
    assert capsys.readouterr().err == ""


def test_a_free_port_is_none_of_the_ports_chosen_a_moment_ago() -> None:
    from streams.dev.localkafka import free_port

    taken = {free_port() for _ in range(50)}
    assert all(free_port(avoid=taken) not in taken for _ in range(50))


def test_a_java_tools_error_is_its_message_without_the_stack_frames() -> None:
    from streams.dev.localkafka import _stderr_message

    stderr = ("Exception in thread main org.apache.kafka.common.config.ConfigException: Each listener must have a "
              "different port, listeners: PLAINTEXT://127.0.0.1:4001,CONTROLLER://127.0.0.1:4001\n"
              + "".join(f"\tat org.apache.kafka.Frame{i}.call(Frame.java:{i})\n" for i in range(40)) + "\t... 8 more\n")
    message = _stderr_message(stderr)
    assert message.startswith("Exception in thread main") and "different port" in message
    assert "Frame" not in message and "more" not in message
