"""An external suite's configuration, read from suites/NAME.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SUITES = Path(__file__).parent / "suites"


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    sdist_sha256: str
    requirements: list[str]
    selection: dict[str, list[str]]
    pytest_args: list[str] = field(default_factory=list)
    # A requirements file inside the source tree to constrain the requirements with.
    constraints: str | None = None
    # Where the tests come from when the sdist does not carry them.
    tests_source: dict[str, str] = field(default_factory=dict)
    # pytest -k expressions, all of which a test must match to run.
    keywords: list[str] = field(default_factory=list)
    # Tests left out on both loops: [{test = "node id", why = "..."}].
    deselect: list[dict[str, str]] = field(default_factory=list)

    @property
    def config_text(self) -> str:
        return (SUITES / f"{self.name}.toml").read_text()


def load(name: str) -> Suite:
    with open(SUITES / f"{name}.toml", "rb") as f:
        return Suite(**tomllib.load(f))


def names() -> list[str]:
    return sorted(p.stem for p in SUITES.glob("*.toml"))
