"""`python -m cxxloop bench`: every workload on every loop, side by side.

Method: each (workload, loop) measurement is a fresh child process; a round
measures every workload on every loop; the loop order rotates from one round
to the next so that no loop always runs first (cold) or last (after the
machine heated up); the median over rounds is reported per loop. On a small
shared machine single runs are noisy, medians of alternated runs are not.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from . import instructions, report
from .loops import CEILING, LOOPS, available, version
from .loops import get as get_loop
from .workloads import Workload, all_workloads


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cxxloop bench",
        description="Run the same workloads on asyncio, cxxloop and the loops a user would pick instead, "
                    "and compare.",
    )
    p.add_argument("--rounds", type=int, help="rounds to take medians over (default 5, quick 2)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of seconds")
    p.add_argument("--only", nargs="+", metavar="NAME", help="workload names or globs ('timers*')")
    p.add_argument("--loops", nargs="+", choices=LOOPS, help="loops to run (default: all installed)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every workload size by this")
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="output directory")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per measurement")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--instructions", action="store_true",
                   help="count instructions per operation with callgrind instead of timing (quick sizes, "
                        "one run; see cxxloop/bench/instructions.py)")
    return p


def _select(workloads: dict[str, Workload], patterns: list[str] | None) -> list[Workload]:
    if not patterns:
        return list(workloads.values())
    chosen = []
    for name, workload in workloads.items():
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            chosen.append(workload)
    unmatched = [p for p in patterns if not fnmatch.filter(workloads, p)]
    if unmatched:
        raise SystemExit(f"no workload matches {', '.join(unmatched)}; known: {', '.join(workloads)}")
    return chosen


def _measure(loop: str, workload: Workload, size: int, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "cxxloop.bench._child",
           "--loop", loop, "--workload", workload.name, "--size", str(size)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        return {"error": f"exit status {proc.returncode}: {tail[0]}"}
    return json.loads(lines[-1])


def _machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
    }


def _build_id() -> str:
    """A fingerprint of the installed cxxloop extension.

    Checked again at the end: a reinstall during a run would otherwise
    silently mix two builds in one set of medians.
    """
    from .. import _core

    try:
        with open(_core.__file__, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:16]
    except OSError:
        return "missing"


def _new_results(args: argparse.Namespace, argv: list[str] | None,
                 selected: list[Workload], loops: list[str], rounds: int) -> dict:
    sizes = {w.name: max(1, round((w.quick_size if args.quick else w.size) * args.scale))
             for w in selected}
    return {
        "meta": {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": sys.argv[1:] if argv is None else list(argv),
            "rounds": rounds,
            "quick": args.quick,
            "machine": _machine(),
            "versions": {name: version(name) for name in loops},
            "loops": loops,
            "not_installed": [name for name in LOOPS if name not in loops and not available(name)],
            "cxxloop_build": _build_id(),
        },
        "workloads": {
            w.name: {"unit": w.unit, "size": sizes[w.name], "description": w.description,
                     "runs": {name: [] for name in _run_names(w, loops)}}
            for w in selected
        },
    }


def _run_names(workload: Workload, loops: list[str]) -> list[str]:
    """What one round measures of `workload`: each loop it applies to, then
    its ceiling. A loop that changes only transports gives nothing new on a
    workload without them; a workload may name the only loops it runs on."""
    names = [name for name in loops if (workload.transports or not get_loop(name).transports_only)
             and (workload.loops is None or name in workload.loops)]
    return [*names, CEILING] if workload.ceiling else names


def _run_rounds(results: dict, selected: list[Workload], timeout: float) -> None:
    loops = results["meta"]["loops"]
    rounds = results["meta"]["rounds"]
    total = rounds * sum(len(_run_names(w, loops)) for w in selected)
    width = max((len(w.name) for w in selected), default=0)
    loop_width = max(len(name) for name in [*loops, CEILING])
    done = 0
    for r in range(rounds):
        # Rotate so each loop takes each position in turn across rounds.
        order = loops[r % len(loops):] + loops[:r % len(loops)]
        for workload in selected:
            entry = results["workloads"][workload.name]
            for loop in _run_names(workload, order):
                earlier = entry["runs"][loop]
                # A loop that lacks what the workload needs still lacks it.
                if earlier and "unsupported" in earlier[-1]:
                    run = earlier[-1]
                else:
                    run = _measure(loop, workload, entry["size"], timeout)
                earlier.append(run)
                done += 1
                if "error" in run:
                    outcome = "FAILED " + run["error"]
                elif "unsupported" in run:
                    outcome = "n/a: " + run["unsupported"]
                else:
                    outcome = (f"{report.human(run['ops_per_sec']):>8} {workload.unit}/s"
                               f"  {report.cpu_us(run['cpu_us_per_op']):>6} CPU µs/op"
                               f"  ({run['seconds']:.3f} s)")
                print(f"[{done:{len(str(total))}}/{total}] round {r + 1}/{rounds}  "
                      f"{workload.name:{width}}  {loop:{loop_width}} {outcome}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workloads = all_workloads()
    if args.list:
        width = max(len(name) for name in workloads)
        for w in workloads.values():
            print(f"{w.name:{width}} {w.description}")
        return 0

    selected = []
    for workload in _select(workloads, args.only):
        reason = workload.unavailable()
        if reason:
            print(f"skipping {workload.name}: {reason}", flush=True)
        else:
            selected.append(workload)
    wanted = args.loops or list(LOOPS)
    loops = [name for name in LOOPS if name in wanted and available(name)]
    for name in wanted:
        if name not in loops:
            note = get_loop(name).note
            print(f"skipping loop {name}: not installed{f' ({note})' if note else ''}", flush=True)
    if args.instructions:
        if reason := instructions.missing():
            raise SystemExit(reason)
        sizes = {w.name: max(1, round(w.quick_size * args.scale)) for w in selected}
        return instructions.run(selected, lambda w: [n for n in _run_names(w, loops) if n != CEILING], sizes,
                                args.timeout, args.out)
    rounds = args.rounds or (2 if args.quick else 5)

    results = _new_results(args, argv, selected, loops, rounds)
    started = time.monotonic()
    _run_rounds(results, selected, args.timeout)
    results["meta"]["elapsed_seconds"] = round(time.monotonic() - started, 1)
    if _build_id() != results["meta"]["cxxloop_build"]:
        print("WARNING: cxxloop was reinstalled during the run; results mix two builds",
              file=sys.stderr, flush=True)
        results["meta"]["cxxloop_build"] += " (changed during the run)"

    results["summary"] = report.summarize(results)
    table = report.table(results)
    print()
    print(table)
    print()
    for path in report.write(results, table, args.out):
        print(f"wrote {path}")
    failed = sum("error" in run for w in results["workloads"].values()
                 for runs in w["runs"].values() for run in runs)
    if failed:
        print(f"{failed} measurement(s) failed; see the FAILED lines above", file=sys.stderr)
    return 1 if failed else 0
