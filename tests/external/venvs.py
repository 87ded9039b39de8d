"""Virtual environments for the external suites, one per library and Python.

They are apart from the project's own test venvs: each holds one library at
its pinned version with its pinned test requirements, and cxxloop built from
the working tree. cxxloop is built once per Python into a wheel (in a builder
venv whose build directory makes rebuilds incremental) and installed into
every library's venv.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from suite import Suite

REPO = Path(__file__).resolve().parents[2]
PIP = ["-m", "pip", "--disable-pip-version-check", "-q"]


def _pip(python: str | Path, *args: str) -> str:
    """Run pip quietly; its warnings (this machine's extra indexes) only show if it fails."""
    proc = subprocess.run([str(python), *PIP, *args], capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"pip {args[0]} failed with {python}")
    return proc.stdout


def _venv(python: str, path: Path) -> Path:
    if not (path / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


def cxxloop_wheel(python: str, work: Path) -> Path:
    """Build the working tree's cxxloop into a wheel for python."""
    builder = _venv(python, work / "builder")
    _pip(builder, "install", "scikit-build-core")
    wheels = work / "wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    _pip(builder, "wheel", "--no-deps", "--no-build-isolation",
         f"--config-settings=build-dir={work / 'cxxloop-build'}", "-w", str(wheels), str(REPO))
    (wheel,) = wheels.glob("cxxloop-*.whl")
    return wheel


def library_venv(python: str, suite: Suite, sdist: Path, tree: Path, wheel: Path, work: Path) -> Path:
    """The suite's venv with its library and requirements; cxxloop freshly installed."""
    path = work / f"venv-{suite.name}"
    constraints = [tree / suite.constraints] if suite.constraints else []
    stamp = hashlib.sha256(
        "\n".join([python, suite.config_text, *(c.read_text() for c in constraints)]).encode()
    ).hexdigest()
    stamp_file = path / "external-suite.sha256"
    if not stamp_file.exists() or stamp_file.read_text() != stamp:
        shutil.rmtree(path, ignore_errors=True)
        py = _venv(python, path)
        _pip(py, "install", str(sdist), *suite.requirements,
             *(arg for c in constraints for arg in ("-c", str(c))))
        stamp_file.write_text(stamp)
    py = path / "bin" / "python"
    _pip(py, "install", "--no-deps", "--force-reinstall", str(wheel))
    return py


def freeze(python: Path) -> str:
    return _pip(python, "freeze")
