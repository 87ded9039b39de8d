"""What the runner prints: per-suite findings and the summary table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from compare import Comparison


@dataclass
class SuiteResult:
    suite: str
    version: str
    python: str
    selection: str
    on_asyncio: dict[str, dict]
    on_cxxloop: dict[str, dict]
    comparison: Comparison
    flaky: dict[str, list[str]]  # loop -> tests that failed once, then passed
    seconds: dict[str, float]  # "asyncio", "cxxloop", "reruns" -> wall time
    collect_errors: dict[str, dict[str, str]]  # loop -> node id -> message
    deselected: list[dict[str, str]]  # the suite's deselect entries

    @property
    def tests(self) -> int:
        return len(self.on_asyncio.keys() | self.on_cxxloop.keys())

    def passed(self, outcomes: dict[str, dict]) -> int:
        return sum(r["outcome"] == "passed" for r in outcomes.values())


def _counts(outcomes: dict[str, dict]) -> str:
    counts = Counter(r["outcome"] for r in outcomes.values())
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.most_common())


def _first_line(record: dict) -> str:
    lines = (record.get("message") or "").strip().splitlines()
    return lines[0][:200] if lines else ""


def describe(r: SuiteResult) -> str:
    lines = [f"== {r.suite} {r.version} on CPython {r.python} ({r.selection} selection)"]
    lines.append(f"   asyncio: {_counts(r.on_asyncio)} in {r.seconds['asyncio']:.0f} s")
    used = Counter(tuple(rec["loops"]) for rec in r.on_cxxloop.values())
    on_cxx = sum(n for loops, n in used.items() if "cxxloop" in loops)
    only_asyncio = used[("asyncio",)]
    lines.append(f"   cxxloop: {_counts(r.on_cxxloop)} in {r.seconds['cxxloop']:.0f} s; "
                 f"{on_cxx} tests ran a cxxloop loop, {only_asyncio} only asyncio's (named by a fixture or the test)")
    for d in r.deselected:
        lines.append(f"   left out on both loops, {d['why']}: {d['test']}")
    if r.seconds.get("reruns"):
        lines.append(f"   reruns of failed tests: {r.seconds['reruns']:.0f} s")
    for loop, errors in r.collect_errors.items():
        for node, message in errors.items():
            lines.append(f"   COLLECTION ERROR on {loop}: {node}: {message.strip().splitlines()[-1:]}")
    for loop, tests in r.flaky.items():
        for test in tests:
            lines.append(f"   flaky on {loop} (failed, then passed when run again): {test}")
    for test in r.comparison.differences:
        lines.append(f"   DIFFERENCE (passes on asyncio, fails on cxxloop twice): {test}")
        lines.append(f"      {_first_line(r.on_cxxloop.get(test, {'message': 'not run on cxxloop'}))}")
    by_reason: dict[str, list[str]] = {}
    for test, why in r.comparison.both_fail.items():
        by_reason.setdefault(why or "", []).append(test)
    for why, tests in sorted(by_reason.items()):
        if why:
            lines.append(f"   fails on both loops, {why}: {len(tests)} tests")
            lines.extend(f"      {test}" for test in tests)
    for test in by_reason.get("", []):
        lines.append(f"   fails on both loops, UNEXPLAINED: {test}")
        lines.append(f"      asyncio: {_first_line(r.on_asyncio.get(test, {}))}")
        lines.append(f"      cxxloop: {_first_line(r.on_cxxloop.get(test, {}))}")
    for test in r.comparison.skipped_on_cxxloop:
        lines.append(f"   passes on asyncio, skipped on cxxloop: {test}: {_first_line(r.on_cxxloop[test])}")
    for test in r.comparison.only_cxxloop:
        lines.append(f"   passes on cxxloop only: {test}")
    return "\n".join(lines)


def table(results: list[SuiteResult]) -> str:
    rows = ["| library | version | Python | selection | tests | asyncio pass | cxxloop pass | differences |",
            "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in results:
        rows.append(f"| {r.suite} | {r.version} | {r.python} | {r.selection} | {r.tests} | "
                    f"{r.passed(r.on_asyncio)} | {r.passed(r.on_cxxloop)} | {len(r.comparison.differences)} |")
    return "\n".join(rows)


def timings(results: list[SuiteResult]) -> str:
    rows = ["| library | Python | selection | asyncio s | cxxloop s | reruns s |",
            "| --- | --- | --- | ---: | ---: | ---: |"]
    for r in results:
        rows.append(f"| {r.suite} | {r.python} | {r.selection} | {r.seconds['asyncio']:.0f} | "
                    f"{r.seconds['cxxloop']:.0f} | {r.seconds.get('reruns', 0):.0f} |")
    return "\n".join(rows)
