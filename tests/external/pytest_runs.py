"""One run of a suite's selected tests on one loop, surviving crashes and hangs.

pytest runs in the suite's source tree with the switch directory on
PYTHONPATH (sitecustomize switches the loop, external_outcomes records each
test). If the interpreter dies or the run outlives its time limit, the test
that was running is recorded as crashed or hung and the run goes on without
it and the tests already done.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from suite import Suite

SWITCH = Path(__file__).resolve().parent / "switch"
RESTARTS = 5


@dataclass
class Run:
    outcomes: dict[str, dict]  # test id -> {"outcome", "message", "traceback", "loops"}
    collect_errors: dict[str, str]
    seconds: float


def _read(path: Path) -> tuple[dict[str, dict], dict[str, str], str | None, bool]:
    """(outcomes, collection errors, the test started and not finished, session finished)."""
    outcomes: dict[str, dict] = {}
    errors: dict[str, str] = {}
    running, finished = None, False
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "start" in record:
                running = record["start"]
            elif "id" in record:
                outcomes[record["id"]] = record
                running = None
            elif "collect_error" in record:
                errors[record["collect_error"]] = record["message"]
            elif "finished" in record:
                finished = True
    return outcomes, errors, running, finished


def run(python: Path, suite: Suite, tree: Path, loop: str, paths: list[str], log_dir: Path,
        tag: str, keywords: list[str], only: set[str] | None = None, limit: float = 1800) -> Run:
    """Run paths (or only the ids in only) of suite on loop ("asyncio" or "cxxloop").

    keywords are pytest -k expressions that a test must all match."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out, log = log_dir / f"{tag}.jsonl", log_dir / f"{tag}.log"
    out.unlink(missing_ok=True)
    log.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(SWITCH),
        "CXXLOOP_EXTERNAL_LOOP": loop,
        "CXXLOOP_EXTERNAL_SUITE": suite.name,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    args = [str(python), "-P", "-m", "pytest", "-p", "no:cacheprovider", "-p", "external_outcomes",
            f"--ext-out={out}", *suite.pytest_args,
            *(f"--deselect={d['test']}" for d in suite.deselect)]
    if keywords:
        args += ["-k", " and ".join(f"({k})" for k in keywords)]
    if only is not None:
        only_file = log_dir / f"{tag}.only"
        only_file.write_text("".join(f"{i}\n" for i in sorted(only)))
        args.append(f"--ext-only={only_file}")
    skip_file = log_dir / f"{tag}.skip"
    lost: dict[str, dict] = {}  # tests that crashed or hung the run
    start = time.monotonic()
    for _ in range(RESTARTS + 1):
        outcomes, errors, running, finished = _read(out)
        skip_file.write_text("".join(f"{i}\n" for i in [*outcomes, *lost]))
        with open(log, "a") as log_file:
            proc = subprocess.Popen([*args, f"--ext-skip={skip_file}", *paths], cwd=tree, env=env,
                                    stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = proc.wait(timeout=max(60.0, limit - (time.monotonic() - start)))
                why = f"the interpreter died (exit status {code})" if code >= 0 else \
                    f"the interpreter died ({signal.Signals(-code).name})"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                why = f"hung: the run was killed after {limit:.0f} s"
        outcomes, errors, running, finished = _read(out)
        if finished or running is None:
            break
        lost[running] = {"id": running, "outcome": "crashed", "message": why,
                         "traceback": _tail(log), "loops": []}
    return Run({**outcomes, **lost}, errors, time.monotonic() - start)


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
