"""The functions' deployment artifact, and the template sam deploy takes with it (make package).

The artifact is one folder that every function ships: the pinned runtime requirements (functions/requirements.txt)
installed from wheels built for the Lambda platform of template.yaml (its runtime and architecture, never the build
machine's), the project's functions/ sources, and all of it compiled to bytecode by an interpreter of the runtime's
Python version, so that no function compiles anything when it starts. The same recipe with this machine's platform
gives the artifact that the tests import every handler from and that the cold-start bench measures.

    python -m infra.package    # .aws-sam/build/: functions/ (the artifact) and template.json (for sam deploy)
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from infra.components import REGION
from infra.template import FUNCTIONS_DIR, ROOT, LocalNames, Template, load_template

TOOLS_DIR = ROOT / ".tools"
ARTIFACTS_DIR = TOOLS_DIR / "artifact"
RUNTIMES_DIR = TOOLS_DIR / "runtime"
BUILD_DIR = ROOT / ".aws-sam" / "build"
PACKAGED_TEMPLATE = BUILD_DIR / "template.json"
REQUIREMENTS = FUNCTIONS_DIR / "requirements.txt"
# Lambda's Python runtimes run on Amazon Linux (glibc 2.34 for python3.12), where manylinux2014 wheels run.
LAMBDA_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
# What pip --target leaves beside the packages and nothing imports: console scripts (whose first line names the
# build machine's interpreter) and C headers.
NOT_IMPORTED = ("bin", "include", "lib64")
# What the functions read that make generates rather than the repository holds (make places).
GENERATED = (FUNCTIONS_DIR / "msp" / "places" / "communes.json",)


class PackagingError(RuntimeError):
    """The artifact cannot be built; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    runtime: str  # Lambda's name of the runtime: python3.12
    platform: str  # pip's --platform of the wheels

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")


def lambda_target(template: Template | None = None) -> Target:
    """The runtime and architecture that every function of the template runs on."""
    functions = (template or load_template()).functions.values()
    targets = {(function.runtime, function.architecture) for function in functions}
    if len(targets) != 1:
        raise PackagingError(f"the functions share one artifact, hence one runtime and architecture: {sorted(targets)}")
    ((runtime, architecture),) = targets
    return Target(runtime, LAMBDA_PLATFORMS[architecture])


def local_target(template: Template | None = None) -> Target:
    """The Lambda runtime's Python version on this machine's platform: an artifact that imports here."""
    return replace(lambda_target(template), platform=f"manylinux2014_{platform.machine()}")


def _interpreter(version: str) -> str:
    """A working `python<version>`: on PATH, else among pyenv's installed versions."""
    candidates = [shutil.which(f"python{version}")]
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        candidates += sorted(map(str, Path(root).glob(f"versions/{version}.*/bin/python{version}")), reverse=True)
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    raise PackagingError(
        f"Python {version} (the functions' Lambda runtime in template.yaml) compiles the artifact and runs its tests, "
        f"and no python{version} was found on PATH or among pyenv's versions: install it (`pyenv install {version}`, "
        f"or the system's python{version} package)."
    )


def runtime_python(runtime: str) -> Path:
    """An interpreter of the runtime's Python version with nothing installed: a virtualenv under .tools/runtime/."""
    interpreter = _interpreter(runtime.removeprefix("python"))
    venv = RUNTIMES_DIR / runtime
    python = venv / "bin" / "python"
    stamp = venv / ".interpreter"
    if not python.exists() or not stamp.exists() or stamp.read_text() != interpreter:
        subprocess.run([interpreter, "-m", "venv", "--clear", "--without-pip", str(venv)], check=True)
        stamp.write_text(interpreter)
    return python


def install_wheels(arguments: list[str], destination: Path, target: Target) -> None:
    """pip install `arguments` into `destination` from wheels of the target's platform and Python version only."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    command += ["--target", str(destination), "--platform", target.platform, "--implementation", "cp"]
    command += ["--python-version", target.python_version, "--only-binary=:all:", *arguments]
    subprocess.run(command, check=True)


def compile_bytecode(folder: Path, python: Path) -> None:
    """Every module of `folder` compiled by `python`, into hash-based .pyc files that are never checked.

    Timestamp-based ones would not do: the deployment zip keeps modification times to 2 seconds, so about half of
    them would disagree with their source and be compiled again at every cold start (/var/task is read-only).
    """
    command = [str(python), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(folder)]
    subprocess.run(command, check=True)


def _sources() -> list[Path]:
    return sorted(
        path
        for path in FUNCTIONS_DIR.rglob("*")
        if path.is_file() and path != REQUIREMENTS and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def build(destination: Path, target: Target, python: Path) -> None:
    """The artifact of `target` in the new folder `destination`, compiled by `python`."""
    missing = [str(path.relative_to(ROOT)) for path in GENERATED if not path.is_file()]
    if missing:
        raise PackagingError(f"the functions need {', '.join(missing)}, which `make places` generates: run it first")
    install_wheels(["-r", str(REQUIREMENTS)], destination, target)
    for name in NOT_IMPORTED:
        shutil.rmtree(destination / name, ignore_errors=True)
    for source in _sources():
        copied = destination / source.relative_to(FUNCTIONS_DIR)
        copied.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copied)
    compile_bytecode(destination, python)


def _fingerprint(target: Target, python: Path) -> str:
    """What the artifact is made of: this recipe, the pins, the target, the compiler's version and the sources."""
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version)"], capture_output=True, check=True)
    digest = hashlib.sha256()
    for part in (Path(__file__).read_bytes(), REQUIREMENTS.read_bytes(), target.platform.encode(), version.stdout):
        digest.update(hashlib.sha256(part).digest())
    for source in _sources():
        digest.update(str(source.relative_to(FUNCTIONS_DIR)).encode() + b"\0")
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    return digest.hexdigest()[:16]


def artifact(target: Target) -> Path:
    """The artifact of `target`, built once for its content under .tools/artifact/ (older ones are removed)."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS_DIR / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test workers share it: one builds, the others wait and reuse
        python = runtime_python(target.runtime)
        kind = f"{target.runtime}-{target.platform}"
        path = ARTIFACTS_DIR / f"{kind}-{_fingerprint(target, python)}"
        if not path.is_dir():
            for stale in ARTIFACTS_DIR.glob(f"{kind}-*"):
                shutil.rmtree(stale)
            partial = path.with_name(f"{path.name}.partial")
            print(f"building the {target.runtime} artifact for {target.platform} in {path.relative_to(ROOT)} ...")
            build(partial, target, python)
            partial.rename(path)
        return path


def packaged_template(template: Template, code_uri: str) -> dict[str, Any]:
    """template.yaml with every function's code at `code_uri`, named on the function itself, as sam build does
    (what sam deploy uploads is a function's own CodeUri: one inherited from Globals has been ignored by packagers)."""
    raw = copy.deepcopy(template.raw)
    sources = raw.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    if sources is None or (ROOT / sources).resolve() != FUNCTIONS_DIR:
        raise PackagingError(f"template.yaml's Globals must name the sources as CodeUri: functions/, not {sources}")
    for name in template.functions:
        properties = raw["Resources"][name]["Properties"]
        if "CodeUri" in properties:
            raise PackagingError(f"{name} names a CodeUri of its own: every function ships the one artifact")
        properties["CodeUri"] = code_uri
    return raw


def runtime_environment(code: Path) -> dict[str, str]:
    """The environment a function of the template finds in Lambda with `code` as its code, on this machine.

    Nothing from the caller's environment comes along but PATH: no PYTHONPATH, no endpoint, no real credentials.
    """
    names = LocalNames(load_template(), "artifact")
    return names.environment() | {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDA_TASK_ROOT": str(code),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "artifact",
        "AWS_SECRET_ACCESS_KEY": "artifact",  # signs nothing: no request leaves these processes
    }


def run_in(code: Path, python: Path, statement: str, environment: dict[str, str] | None = None) -> str:
    """Run `statement` as Lambda runs a function: `code` first on sys.path, no bytecode written; its output."""
    result = subprocess.run(
        [str(python), "-B", "-c", statement],
        cwd=code,
        env=runtime_environment(code) | (environment or {}),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise PackagingError(f"{statement!r} failed in {code}:\n{result.stderr[-3000:]}")
    return result.stdout


def package(build_dir: Path = BUILD_DIR) -> Path:
    """The Lambda artifact copied to `build_dir`/functions/ and the template pointing at it; the template's path."""
    template = load_template()
    built = artifact(lambda_target(template))
    shutil.rmtree(build_dir, ignore_errors=True)
    shutil.copytree(built, build_dir / "functions")
    packaged = build_dir / PACKAGED_TEMPLATE.name
    packaged.write_text(json.dumps(packaged_template(template, "functions"), indent=1, ensure_ascii=False) + "\n")
    return packaged


def main() -> int:
    try:
        packaged = package()
    except PackagingError as error:
        print(error, file=sys.stderr)
        return 1
    code = packaged.parent / "functions"
    size = sum(path.stat().st_size for path in code.rglob("*") if path.is_file())
    target = lambda_target()
    print(f"{code.relative_to(ROOT)}/: {size / 1e6:.0f} MB unzipped, {target.runtime} on {target.platform}")
    print(f"{packaged.relative_to(ROOT)}: template.yaml with every function's CodeUri at it, for sam deploy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
