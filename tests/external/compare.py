"""Compare a suite's per-test outcomes on asyncio and on cxxloop.

A test that passes on asyncio and does not pass on cxxloop (fails, errors,
crashes, or is not run) is a difference. A test that fails on both is
matched against environment.toml's known reasons (environment.reasons()); one that matches none is
unexplained and printed as such.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

PASS = {"passed"}
NOT_RUN = {"outcome": "not run", "message": "not run on this loop", "loops": []}


@dataclass
class Comparison:
    differences: list[str] = field(default_factory=list)  # pass on asyncio, not on cxxloop
    both_fail: dict[str, str | None] = field(default_factory=dict)  # id -> environment reason
    only_cxxloop: list[str] = field(default_factory=list)  # pass on cxxloop, fail on asyncio
    skipped_on_cxxloop: list[str] = field(default_factory=list)  # pass on asyncio, skipped on cxxloop


def failed(record: dict) -> bool:
    return record["outcome"] in {"failed", "error", "crashed", "not run"}


def reason_for(suite: str, test: str, records: list[dict], known: list[dict]) -> str | None:
    """The first known reason whose tests and failure pattern both fit every record."""
    for reason in known:
        if reason.get("suite", suite) != suite:
            continue
        if not any(fnmatch.fnmatchcase(test, pattern) for pattern in reason.get("tests", ["*"])):
            continue
        pattern = reason.get("failure")
        texts = [r.get("message", "") + "\n" + r.get("traceback", "") for r in records]
        if pattern is None or all(re.search(pattern, t) for t in texts):
            return reason["why"]
    return None


def compare(suite: str, on_asyncio: dict[str, dict], on_cxxloop: dict[str, dict],
            known: list[dict]) -> Comparison:
    result = Comparison()
    for test in sorted(on_asyncio.keys() | on_cxxloop.keys()):
        a = on_asyncio.get(test, NOT_RUN)
        c = on_cxxloop.get(test, NOT_RUN)
        if a["outcome"] in PASS and failed(c):
            result.differences.append(test)
        elif a["outcome"] in PASS and c["outcome"] not in PASS:
            result.skipped_on_cxxloop.append(test)
        elif failed(a) and failed(c):
            result.both_fail[test] = reason_for(suite, test, [a, c], known)
        elif failed(a) and c["outcome"] in PASS:
            result.only_cxxloop.append(test)
    return result
