"""One measurement: one workload on one loop, in a process of its own.

A fresh process per measurement keeps loops from sharing warmed-up caches,
allocator state or leftover threads. The parent reads the last line of
stdout, a JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import traceback

from .loops import CEILING, describe, new_loop
from .workloads import Workload, all_workloads
from .workloads.timing import Measured


def record(measured: Measured, loop_class: str) -> dict:
    ops, seconds, cpu_seconds = measured
    return {
        "ops": ops,
        "seconds": seconds,
        "ops_per_sec": ops / seconds,
        "cpu_seconds": cpu_seconds,
        "cpu_us_per_op": cpu_seconds / ops * 1e6,
        # Proves which loop really ran: a silent fallback would be a lie.
        "loop_class": loop_class,
    }


def _unsupported(exc: NotImplementedError) -> dict:
    """What a loop said it does not implement: the call that raised."""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return {"unsupported": f"NotImplementedError from {frame.name}() ({frame.filename}:{frame.lineno})"}


def measure(loop: asyncio.AbstractEventLoop, workload: Workload, size: int, warm_up: bool = True) -> dict:
    """Run `workload` on `loop`: a warm-up, then the timed run. A loop that
    raises NotImplementedError lacks something the workload needs, which is
    a result ("n/a" in the table), not a failure."""
    asyncio.set_event_loop(loop)
    try:
        # A small warm-up run first: imports, lazily created threads and
        # first-call caches are not what is being measured.
        if warm_up:
            workload.run(loop, max(1, size // 10))
        gc.collect()
        measured = workload.run(loop, size)
    except NotImplementedError as exc:
        return _unsupported(exc)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return record(measured, describe(loop))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cxxloop.bench._child")
    parser.add_argument("--loop", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--no-warmup", action="store_true", help="run the measured size only")
    args = parser.parse_args(argv)

    workload = all_workloads()[args.workload]
    if args.loop == CEILING:
        if workload.ceiling is None:
            raise SystemExit(f"{workload.name} has no ceiling")
        workload.ceiling(max(1, args.size // 10))  # warm-up, as below
        result = record(workload.ceiling(args.size), "none (plain C server)")
    else:
        result = measure(new_loop(args.loop), workload, args.size, warm_up=not args.no_warmup)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
