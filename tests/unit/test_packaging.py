"""What `pip install .` (the container image) ships: every subpackage of streams/ and its data files."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_subpackage_of_streams_is_installed() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools["packages"]["find"]["include"]
    packages = [".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "streams").rglob("__init__.py")]
    assert "streams.bench" in packages
    assert [p for p in packages if not any(fnmatch(p, pattern) for pattern in include)] == []


def test_the_data_files_the_code_reads_are_declared_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, patterns in data.items():
        base = ROOT.joinpath(*package.split("."))
        assert all(list(base.glob(pattern)) for pattern in patterns), package
    declared = {(package, pattern) for package, patterns in data.items() for pattern in patterns}
    assert {("streams.rules", "*.json"), ("streams", "schemas/*.json"), ("streams.localkafka", "pom.xml")} <= declared
