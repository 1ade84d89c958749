"""The deployment artifact of make package: what it holds, and every handler importing from it on the runtime's Python.

The Lambda artifact (arm64) cannot run here; the same recipe built for this machine's platform can, and is what the
handlers are imported from. Both are built once per content under .tools/artifact/.
"""

from __future__ import annotations

import json
import struct
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from infra.dependency_audit import locked_versions
from infra.package import (
    REQUIREMENTS,
    artifact,
    lambda_target,
    local_target,
    run_in,
    runtime_python,
)
from infra.template import FUNCTIONS_DIR, load_template

FUNCTIONS = load_template().functions
EM_AARCH64 = 183  # ELF e_machine of 64-bit ARM
# Lambda's limit on a function's code, unzipped.
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024


@pytest.fixture(scope="module")
def lambda_artifact() -> Path:
    return artifact(lambda_target())


def _distributions(root: Path) -> dict[str, tuple[str, list[str]]]:
    """Each distribution installed in `root`: (version, wheel tags), by canonical name."""
    found = {}
    for distribution in metadata.distributions(path=[str(root)]):
        wheel = (distribution.read_text("WHEEL") or "").splitlines()
        tags = [line.removeprefix("Tag: ") for line in wheel if line.startswith("Tag: ")]
        found[canonicalize_name(distribution.metadata["Name"])] = (distribution.version, tags)
    return found


def _elf_machine(path: Path) -> int | None:
    """The e_machine of a 64-bit little-endian ELF file; None for anything else."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
        return None
    return struct.unpack_from("<H", header, 18)[0]


def test_the_artifact_holds_the_pinned_runtime_requirements_and_nothing_else(lambda_artifact):
    installed = {name: {version} for name, (version, _) in _distributions(lambda_artifact).items()}
    assert installed == locked_versions((REQUIREMENTS,))
    for development_only in ("moto", "pytest", "hypothesis", "cfn-lint", "aws-sam-cli", "ruff", "pip-tools"):
        assert development_only not in installed

    # Every top-level entry belongs to one of those distributions (its RECORD) or to the project's sources.
    owned = {"__pycache__"} | {path.name for path in FUNCTIONS_DIR.iterdir() if path != REQUIREMENTS}
    for distribution in metadata.distributions(path=[str(lambda_artifact)]):
        owned |= {file.parts[0] for file in distribution.files or ()}
    strays = {path.name for path in lambda_artifact.iterdir()} - owned - {"__pycache__"}
    assert strays == set(), f"in the artifact, from no pinned distribution nor the sources: {sorted(strays)}"


def test_the_project_sources_are_in_the_artifact_as_they_are(lambda_artifact):
    for source in FUNCTIONS_DIR.rglob("*"):
        if source.is_file() and source != REQUIREMENTS and "__pycache__" not in source.parts:
            assert (lambda_artifact / source.relative_to(FUNCTIONS_DIR)).read_bytes() == source.read_bytes()


def test_every_compiled_dependency_is_a_linux_arm64_wheel_for_the_runtime(lambda_artifact):
    target = lambda_target()
    abi = f"cp{target.python_version.replace('.', '')}"
    compiled = {
        name: tags
        for name, (_, tags) in _distributions(lambda_artifact).items()
        if any(not tag.endswith("-none-any") for tag in tags)
    }
    assert {"pydantic-core", "h3"} <= set(compiled)
    for name, tags in compiled.items():
        for tag in tags:
            python, wheel_abi, platform = tag.split("-")
            assert (python, wheel_abi) == (abi, abi), f"{name}: {tag} is not for {target.runtime}"
            assert platform.startswith("manylinux") and platform.endswith("_aarch64"), f"{name}: {tag}"

    machines = {path: _elf_machine(path) for path in lambda_artifact.rglob("*.so*") if path.is_file()}
    assert machines, "no shared object found: the compiled dependencies are missing"
    for path, machine in machines.items():
        assert machine == EM_AARCH64, f"{path.relative_to(lambda_artifact)} is not a 64-bit ARM ELF file"
        if ".cpython-" in path.name:
            assert path.name.endswith(f".cpython-{abi[2:]}-aarch64-linux-gnu.so"), path.name


def test_every_module_is_compiled_by_the_runtime_python_into_unchecked_hash_bytecode(lambda_artifact):
    python = runtime_python(lambda_target().runtime)
    magic = bytes.fromhex(
        subprocess.run(
            [str(python), "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    tag = f"cpython-{lambda_target().python_version.replace('.', '')}"
    modules = list(lambda_artifact.rglob("*.py"))
    assert len(modules) > 100
    for module in modules:
        compiled = module.parent / "__pycache__" / f"{module.stem}.{tag}.pyc"
        assert compiled.exists(), f"{module.relative_to(lambda_artifact)} is not compiled"
        header = compiled.read_bytes()[:8]
        assert header[:4] == magic, f"{compiled.relative_to(lambda_artifact)}: another Python's bytecode"
        # PEP 552 flags: bit 0 hash-based, bit 1 checked against the source.
        assert int.from_bytes(header[4:8], "little") == 0b01, f"{compiled.relative_to(lambda_artifact)}"


def test_the_artifact_fits_in_a_lambda_function(lambda_artifact):
    size = sum(path.stat().st_size for path in lambda_artifact.rglob("*") if path.is_file())
    assert size < MAX_UNZIPPED_BYTES


# Run in the artifact: each handler of ENTRY_POINTS imported, then every module loaded from elsewhere than the
# artifact (the working directory) and the standard library.
IMPORT_EVERY_HANDLER = """
import importlib, json, os, sys, sysconfig
outcome = {}
for module, name in json.loads(os.environ["ENTRY_POINTS"]).items():
    try:
        outcome[module] = callable(getattr(importlib.import_module(module), name))
    except Exception as error:
        outcome[module] = f"{type(error).__name__}: {error}"
places = (os.getcwd(), sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
loaded = [getattr(module, "__file__", None) for module in list(sys.modules.values())]
outside = sorted(path for path in loaded if path and not path.startswith(places))
print(json.dumps({"outcome": outcome, "outside": outside, "path": sys.path}))
"""


@pytest.fixture(scope="module")
def imported_handlers() -> dict:
    """Every handler of the template imported in one process of the runtime's Python from the local artifact."""
    target = local_target()
    entry_points = {function.module: function.entry_point for function in FUNCTIONS.values()}
    output = run_in(
        artifact(target),
        runtime_python(target.runtime),
        IMPORT_EVERY_HANDLER,
        {"ENTRY_POINTS": json.dumps(entry_points)},
    )
    return json.loads(output.splitlines()[-1])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_imports_from_the_local_artifact_on_the_runtime_python(imported_handlers, name):
    outcome = imported_handlers["outcome"][FUNCTIONS[name].module]
    assert outcome is True, f"{FUNCTIONS[name].handler}: {outcome}"


def test_the_handlers_load_nothing_but_the_artifact_and_the_standard_library(imported_handlers):
    assert imported_handlers["outside"] == [], imported_handlers["path"]
