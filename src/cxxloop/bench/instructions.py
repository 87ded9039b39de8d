"""`python -m cxxloop bench --instructions`: instructions per operation,
counted by callgrind, instead of timings.

On a small shared machine a 1% difference is lost in the noise of
timings; callgrind's instruction counts do not depend on what else the
machine runs. Each (workload, loop) runs twice under callgrind, at the
workload's size and at three times it, without the warm-up; the difference
of the two counts over the difference of the operations leaves out start-up,
imports and set-up, which both runs share. Python's string hashing is fixed
(PYTHONHASHSEED=0) so that dict layouts repeat. A workload that is a variant
of another (Workload.variant_of) is also shown as the difference from it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .workloads import Workload

_COLLECTED = re.compile(r"Collected : (\d+)")


def missing() -> str | None:
    return None if shutil.which("valgrind") else "valgrind is not installed (apt-get install valgrind)"


def _count(loop: str, workload: Workload, size: int, timeout: float) -> tuple[int, int]:
    """(instructions, operations) of one run under callgrind."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           sys.executable, "-m", "cxxloop.bench._child",
           "--loop", loop, "--workload", workload.name, "--size", str(size), "--no-warmup"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    found = _COLLECTED.search(proc.stderr)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not found or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"exit status {proc.returncode}: {tail[0]}")
    return int(found[1]), json.loads(lines[-1])["ops"]


def measure(loop: str, workload: Workload, size: int, timeout: float) -> dict:
    try:
        (i1, o1), (i3, o3) = (_count(loop, workload, n, timeout) for n in (size, 3 * size))
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        return {"error": str(err)}
    if o3 <= o1:
        return {"error": f"the larger run did no more operations ({o1} then {o3})"}
    return {"instructions_per_op": (i3 - i1) / (o3 - o1), "instructions": [i1, i3], "ops": [o1, o3]}


def table(results: dict) -> str:
    rows = [["workload", "loop", "instructions/op", "vs base"]]
    for name, entry in results.items():
        for loop, run in entry["runs"].items():
            if "error" in run:
                rows.append([name, loop, "FAILED", run["error"]])
                continue
            per_op = run["instructions_per_op"]
            base = results.get(entry["variant_of"] or "", {}).get("runs", {}).get(loop, {})
            versus = "-"
            if "instructions_per_op" in base:
                diff = per_op - base["instructions_per_op"]
                versus = f"{diff:+.1f} ({diff / base['instructions_per_op']:+.2%} of {entry['variant_of']})"
            rows.append([name, loop, f"{per_op:,.1f}", versus])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + ("-" if i < 2 else ":") for i, w in enumerate(widths)) + "|")
    return "\n".join(lines) + ("\n\nInstructions per operation counted by callgrind: the difference between "
                               "a run of the size shown in the JSON and one three times as large.")


def run(selected: list[Workload], loops_of: Callable[[Workload], list[str]], sizes: dict[str, int], timeout: float,
        out: Path) -> int:
    """Measures each workload on the loops loops_of(workload) names."""
    results: dict = {}
    for workload in selected:
        entry = results[workload.name] = {"unit": workload.unit, "size": sizes[workload.name],
                                          "variant_of": workload.variant_of, "runs": {}}
        for loop in loops_of(workload):
            run = entry["runs"][loop] = measure(loop, workload, sizes[workload.name], timeout)
            outcome = run.get("error") or f"{run['instructions_per_op']:,.1f} instructions/op"
            print(f"{workload.name}  {loop:8} {outcome}", flush=True)
    text = table(results)
    print()
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "instructions.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "instructions.md").write_text(text + "\n")
    print(f"\nwrote {out / 'instructions.json'}\nwrote {out / 'instructions.md'}")
    return 1 if any("error" in r for e in results.values() for r in e["runs"].values()) else 0
