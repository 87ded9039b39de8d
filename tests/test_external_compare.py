"""The external suites' per-test comparison (tests/external/compare.py), on made-up outcomes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load(name: str):
    """tests/external/NAME.py under its own name: tests/external is not a package,
    and putting it on sys.path would give its generic module names to everything."""
    spec = importlib.util.spec_from_file_location(f"external_{name}", Path(__file__).parent / "external" / f"{name}.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare = _load("compare")


def outcome(kind: str, message: str = "") -> dict:
    return {"outcome": kind, "message": message, "traceback": "", "loops": []}


KNOWN = [
    {"why": "no IPv6 here", "suite": "lib", "tests": ["*ipv6*"], "failure": "Name or service not known"},
]


def test_a_pass_on_asyncio_that_fails_crashes_or_is_missing_on_cxxloop_is_a_difference():
    on_asyncio = {t: outcome("passed") for t in ("fails", "errors", "crashes", "missing", "passes")}
    on_cxxloop = {
        "fails": outcome("failed"), "errors": outcome("error"), "crashes": outcome("crashed"),
        "passes": outcome("passed"),
    }
    result = compare.compare("lib", on_asyncio, on_cxxloop, KNOWN)
    assert result.differences == ["crashes", "errors", "fails", "missing"]
    assert not result.both_fail


def test_a_failure_on_both_loops_takes_a_known_reason_only_if_both_failures_match_it():
    both = outcome("failed", "socket.gaierror: [Errno -2] Name or service not known")
    other = outcome("failed", "AssertionError")
    on_asyncio = {"t[ipv6]": both, "u[ipv6]": both, "v[ipv4]": both}
    on_cxxloop = {"t[ipv6]": both, "u[ipv6]": other, "v[ipv4]": both}
    result = compare.compare("lib", on_asyncio, on_cxxloop, KNOWN)
    assert result.both_fail == {"t[ipv6]": "no IPv6 here", "u[ipv6]": None, "v[ipv4]": None}
    assert compare.compare("other", on_asyncio, on_cxxloop, KNOWN).both_fail["t[ipv6]"] is None


def test_skips_and_passes_on_cxxloop_alone_are_reported_apart_and_are_no_difference():
    on_asyncio = {"skipped": outcome("passed"), "fixed": outcome("failed"), "same": outcome("skipped")}
    on_cxxloop = {"skipped": outcome("skipped"), "fixed": outcome("passed"), "same": outcome("skipped")}
    result = compare.compare("lib", on_asyncio, on_cxxloop, KNOWN)
    assert result.differences == []
    assert result.skipped_on_cxxloop == ["skipped"]
    assert result.only_cxxloop == ["fixed"]


def test_the_environment_file_parses_and_gives_each_entry_a_reason_and_a_known_check():
    environment = _load("environment")
    entries = environment._load()
    assert all(e["why"] for kind in ("reason", "leave_out") for e in entries.get(kind, []))
    assert all(e["unless"] in environment.CHECKS for e in entries.get("leave_out", []))
