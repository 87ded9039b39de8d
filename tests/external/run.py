"""Run other projects' test suites on asyncio and on cxxloop, and compare them per test.

    python tests/external/run.py --python /usr/bin/python3.13 [--python PY=quick] [--suite aiohttp]

Each --python runs every suite (or those named with --suite) with that
interpreter, with the selection named after "=" (default: full; see each
suites/NAME.toml). The exit status is 1 when a test passes on asyncio and
fails on cxxloop, twice: a test that fails on cxxloop is run again before it
counts. Everything is kept under build/external/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import compare
import environment
import pytest_runs
import report
import sources
import suite as suites
import venvs

BUILD = venvs.REPO / "build" / "external"


def _version(python: str) -> str:
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class Prepared:
    suite: suites.Suite
    python: Path  # the suite's venv interpreter
    tree: Path  # the source tree its tests run in
    logs: Path
    left_out: list[dict]  # the environment.toml entries that leave tests out here

    @property
    def keywords(self) -> list[str]:
        return self.suite.keywords + [f"not ({e['keyword']})" for e in self.left_out]


def prepare(python: str, version: str, s: suites.Suite, wheel: Path) -> Prepared:
    work = BUILD / version
    logs = work / "logs" / s.name
    sdist = sources.sdist(s, BUILD / "sdists")
    tree = sources.test_tree(s, BUILD / "sdists", work / "src" / s.name)
    py = venvs.library_venv(python, s, sdist, tree, wheel, work)
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "pip-freeze.txt").write_text(venvs.freeze(py))
    return Prepared(s, py, tree, logs, environment.left_out(s.name))


def _in_parallel(jobs: int, runs: dict[tuple[str, str], Callable[[], pytest_runs.Run]]) -> dict:
    with ThreadPoolExecutor(jobs) as pool:
        futures = {pool.submit(fn): key for key, fn in runs.items()}
        done = {}
        for f in as_completed(futures):
            (name, loop), result = futures[f], f.result()
            print(f"   {name} on {loop}: {len(result.outcomes)} tests in {result.seconds:.0f} s", flush=True)
            done[name, loop] = result
        return done


def run_all(prepared: list[Prepared], version: str, selection: str, jobs: int) -> list[report.SuiteResult]:
    """Every suite on both loops, then the reruns of failures, jobs pytest processes at a time."""
    first = _in_parallel(jobs, {
        (p.suite.name, loop): partial(pytest_runs.run, p.python, p.suite, p.tree, loop,
                                      p.suite.selection[selection], p.logs, loop, p.keywords)
        for p in prepared for loop in ("asyncio", "cxxloop")
    })
    known = environment.reasons()
    again: dict[tuple[str, str], set[str]] = {}
    for p in prepared:
        a, c = first[p.suite.name, "asyncio"].outcomes, first[p.suite.name, "cxxloop"].outcomes
        # A failure on asyncio matters only where cxxloop fails too for no known
        # reason; those run again on both loops, as a pass on asyncio's second
        # run makes cxxloop's failure a difference if it fails a second time.
        both = {t for t, r in a.items() if compare.failed(r) and compare.failed(c.get(t, compare.NOT_RUN))
                and compare.reason_for(p.suite.name, t, [r, c.get(t, compare.NOT_RUN)], known) is None}
        again[p.suite.name, "asyncio"] = both
        again[p.suite.name, "cxxloop"] = both | {
            t for t, r in a.items() if r["outcome"] in compare.PASS and compare.failed(c.get(t, compare.NOT_RUN))}
    rerun = _in_parallel(jobs, {
        key: partial(pytest_runs.run, p.python, p.suite, p.tree, key[1], p.suite.selection[selection], p.logs,
                     f"{key[1]}-rerun", p.keywords, only=again[key])
        for p in prepared for key in [(p.suite.name, "asyncio"), (p.suite.name, "cxxloop")] if again[key]
    })
    results = []
    for p in prepared:
        name = p.suite.name
        outcomes = {loop: first[name, loop].outcomes for loop in ("asyncio", "cxxloop")}
        flaky = {}
        for loop, outs in outcomes.items():
            if (name, loop) in rerun:
                flaky[loop] = _merge(outs, rerun[name, loop].outcomes)
        a, c = outcomes["asyncio"], outcomes["cxxloop"]
        results.append(report.SuiteResult(
            suite=name, version=p.suite.version, python=version, selection=selection,
            on_asyncio=a, on_cxxloop=c, comparison=compare.compare(name, a, c, known),
            flaky={loop: f for loop, f in flaky.items() if f},
            seconds={"asyncio": first[name, "asyncio"].seconds, "cxxloop": first[name, "cxxloop"].seconds,
                     "reruns": sum(rerun[name, loop].seconds for loop in flaky)},
            collect_errors={loop: first[name, loop].collect_errors for loop in ("asyncio", "cxxloop")
                            if first[name, loop].collect_errors},
            deselected=p.suite.deselect + [{"test": f"-k '{e['keyword']}'", "why": e["why"]} for e in p.left_out],
        ))
        (p.logs / "outcomes.json").write_text(json.dumps({"asyncio": a, "cxxloop": c}, indent=1))
    return results


def _merge(outcomes: dict[str, dict], again: dict[str, dict]) -> list[str]:
    """Take the rerun's outcomes (keeping the first run's beside); return the tests that passed now."""
    flaky = []
    for test, record in again.items():
        if test in outcomes:
            if record["outcome"] == "passed":
                flaky.append(test)
            outcomes[test] = {**record, "first_run": outcomes[test]}
    return sorted(flaky)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", action="append", required=True, metavar="PY[=SELECTION]")
    parser.add_argument("--suite", action="append", choices=suites.names())
    # The suites mostly wait (on sockets, sleeps, subprocesses): three runs at a
    # time keep two cores busy without starving the timing-sensitive tests.
    parser.add_argument("--jobs", type=int, default=3, help="pytest processes at a time (default 3)")
    args = parser.parse_args()
    results: list[report.SuiteResult] = []
    for spec in args.python:
        python, _, selection = spec.partition("=")
        version = _version(python)
        print(f"=== external suites on CPython {version} ({python})", flush=True)
        selection = selection or "full"
        start = time.monotonic()
        wheel = venvs.cxxloop_wheel(python, BUILD / version)
        prepared = [prepare(python, version, suites.load(name), wheel) for name in args.suite or suites.names()]
        print(f"-- cxxloop built and the venvs ready in {time.monotonic() - start:.0f} s", flush=True)
        for p in prepared:
            print(f"-- {p.suite.name} {p.suite.version}: {' '.join(p.suite.selection[selection])}", flush=True)
        for result in run_all(prepared, version, selection, args.jobs):
            print(report.describe(result), flush=True)
            results.append(result)
    summary = report.table(results) + "\n\n" + report.timings(results)
    (BUILD / "report.md").write_text(summary + "\n")
    print("\n" + summary)
    broken = [r for r in results if not any("cxxloop" in rec["loops"] for rec in r.on_cxxloop.values())
              or not r.passed(r.on_asyncio)]
    for r in broken:
        print(f"{r.suite} on {r.python}: no test passed on asyncio, or none ran a cxxloop loop: the run is broken")
    differences = sum(len(r.comparison.differences) for r in results)
    unexplained = sum(why is None for r in results for why in r.comparison.both_fail.values())
    print(f"external suites: {differences} tests pass on asyncio and fail on cxxloop, "
          f"{unexplained} fail on both loops without a known reason")
    # The plain closing line CI reads: tests passed on cxxloop, and the differences.
    print(f"external: {sum(r.passed(r.on_cxxloop) for r in results)} passed, {differences} failed")
    return 1 if differences or broken else 0


if __name__ == "__main__":
    sys.exit(main())
