"""Every command the README and docs/ show runs as written: each `hcs ...` names a real command
with real options (its --help runs), each `python -m benchmarks....` starts (its --help), each
`make ...` target exists. A renamed command or option fails here, not in a reader's terminal."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from streams import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ALTERNATIVE = "¦"


def code() -> list[str]:
    """The code of the docs: inline spans and the lines of fenced blocks (continuations joined)."""
    found: list[str] = []
    for path in DOCS:
        text = path.read_text()
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            found += [line.split("#", 1)[0] for line in block.replace("\\\n", " ").splitlines()]
        found += re.findall(r"(?<!`)`([^`\n]+)`(?!`)", re.sub(r"```.*?```", "", text, flags=re.S))
    return found


def commands(prefix: str) -> set[str]:
    """Each documented invocation that starts with ``prefix`` (after an optional path and
    environment settings), from the prefix to the end of its command."""
    said = set()
    for snippet in code():
        # A table's "A\\|B" (alternatives, the pipe escaped for Markdown) is no shell pipe.
        for part in re.split(r"\s*(?:&&|\|\||;|\||&)\s*", snippet.replace("\\|", ALTERNATIVE)):
            words = part.split()
            while words and re.match(r"^[A-Z_]+=", words[0]):
                words = words[1:]  # VAR=value before the command
            if words and words[0].removeprefix(".venv/bin/") == prefix.split()[0] and \
                    " ".join(words).removeprefix(".venv/bin/").startswith(prefix):
                said.add(" ".join(words).removeprefix(".venv/bin/"))
    return said


def words_of(documented: str) -> list[str]:
    """A documented invocation's words, each of alternatives the first."""
    return [word.split(ALTERNATIVE)[0] for word in shlex.split(documented.replace("…", "x"))]


def resolve(words: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """The longest command path of ``words`` in the hcs CLI, its command, and the rest."""
    command: click.Command = cli.cli
    path: list[str] = []
    rest = list(words)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        path.append(rest[0])
        command = command.commands[rest.pop(0)]
    return path, command, rest


HCS = sorted(commands("hcs "))


def test_the_docs_show_the_commands_people_use() -> None:
    used = {" ".join(resolve(words_of(c)[1:])[0]) for c in HCS}
    assert {"run", "worker", "tail", "simulate", "ack", "incidents", "dlq", "bench", "policy publish",
            "acl apply", "broker start", "register show"} <= used, used


@pytest.mark.parametrize("documented", HCS)
def test_each_documented_hcs_command_and_option_exists_and_its_help_runs(documented: str) -> None:
    words = [word.strip("[]") for word in words_of(documented)][1:]
    path, command, rest = resolve(words)
    assert path or rest[:1] in (["--version"], ["--help"]), f"`{documented}`: no such command"
    if path in (["bench"], ["worker"], ["alerts-bridge"]):
        return  # their options pass through (to benchmarks.run, to Faust's worker): below
    options = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in options, f"`{documented}`: {command.name} has no {word}"
    result = CliRunner().invoke(cli.cli, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output, result.output


def test_hcs_bench_and_the_workers_run_from_the_installed_command() -> None:
    hcs = Path(sys.executable).parent / "hcs"  # the entry point the README uses (.venv/bin/hcs)
    for args in (["bench", "--help"], ["worker", "--help"], ["alerts-bridge", "--help"]):
        result = subprocess.run([str(hcs), *args], capture_output=True, text=True, timeout=60, cwd="/",
                                check=False)
        assert result.returncode == 0 and "Usage:" in result.stdout, (args, result.stderr[-2000:])


@pytest.mark.parametrize("module", sorted({re.match(r"python -m (benchmarks\.[a-z_]+)", c)[1]  # type: ignore[index]
                                          for c in commands("python -m benchmarks.")}))
def test_each_documented_benchmark_starts(module: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60,
                            cwd=ROOT, check=False)
    assert result.returncode == 0 and "Usage:" in result.stdout, result.stderr[-2000:]


def test_each_documented_make_target_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    documented = {shlex.split(c)[1] for c in commands("make ") if len(shlex.split(c)) > 1}
    assert {"run", "test"} <= documented and documented <= targets, documented - targets
