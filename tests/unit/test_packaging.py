"""What `pip install .` (the container image) ships: every subpackage of streams/ and its data files."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_subpackage_of_streams_is_installed() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools["packages"]["find"]["include"]
    packages = [".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "streams").rglob("__init__.py")]
    assert "streams.rules" in packages and "streams.dev.localkafka" in packages
    assert not (ROOT / "streams/bench").exists()  # benchmarks live in benchmarks/, not in the product
    assert [p for p in packages if not any(fnmatch(p, pattern) for pattern in include)] == []


def test_the_data_files_the_code_reads_are_declared_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, patterns in data.items():
        base = ROOT.joinpath(*package.split("."))
        assert all(list(base.glob(pattern)) for pattern in patterns), package
    declared = {(package, pattern) for package, patterns in data.items() for pattern in patterns}
    expected = {("streams.rules", "*.json"), ("streams", "schemas/*.json"), ("streams.dev.localkafka", "pom.xml")}
    assert expected <= declared


def test_every_third_party_module_the_product_imports_is_a_declared_dependency() -> None:
    import ast
    import importlib.metadata
    import re
    import sys

    imported: set[str] = set()
    for path in (ROOT / "streams").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    # benchmarks/: the source checkout's, imported by `hcs bench` only (which says so when it is absent).
    ours = {"streams", "benchmarks"}
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name not in ours}
    distributions = importlib.metadata.packages_distributions()
    needed = {re.sub(r"[-_.]+", "-", distributions[name][0]).lower() for name in third_party}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0]).lower()
                for dep in project["dependencies"]}
    assert "mode-streaming" in needed and "aiohttp" in needed
    assert needed - declared == set()


def test_hcs_version_prints_the_installed_version() -> None:
    import importlib.metadata
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "streams", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"hcs, version {importlib.metadata.version('hcs')}"


def locked() -> dict[str, tuple[str, list[str]]]:
    """deploy/requirements.lock: name -> (version, hashes)."""
    import re

    pins: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in (ROOT / "deploy/requirements.lock").read_text().splitlines():
        if pin := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line):
            current = pin[1].lower().replace("_", "-")
            pins[current] = (pin[2], [])
        elif digest := re.search(r"--hash=sha256:([0-9a-f]{64})", line):
            pins[current][1].append(digest[1])
    return pins


def test_the_lock_file_pins_every_runtime_dependency_within_its_range_with_hashes() -> None:
    from packaging.requirements import Requirement

    pins = locked()
    for spec in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(spec)
        version, hashes = pins[requirement.name.lower()]
        assert requirement.specifier.contains(version), (spec, version)
        assert hashes, requirement.name
    assert all(hashes for _, hashes in pins.values())  # pip --require-hashes installs nothing unhashed


def test_the_tests_run_the_locked_versions_the_image_ships() -> None:
    import importlib.metadata

    # `make install` installs the lock first; a version drifting from it would be tested, not shipped.
    drift = {name: (version, importlib.metadata.version(name)) for name, (version, _) in locked().items()
             if importlib.metadata.version(name) != version}
    assert drift == {}


def test_the_image_builds_from_a_pinned_base_and_the_lock_file() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = next(line for line in dockerfile.splitlines() if line.startswith("FROM "))
    assert re.fullmatch(r"FROM python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile
    assert "USER hcs" in dockerfile
