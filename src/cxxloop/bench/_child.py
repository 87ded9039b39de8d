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
import sys

from .loops import CEILING, new_loop
from .workloads import all_workloads


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
        ops, seconds = workload.ceiling(args.size)
        print(json.dumps({"ops": ops, "seconds": seconds, "ops_per_sec": ops / seconds,
                          "loop_class": "none (plain C server)"}), flush=True)
        return
    loop = new_loop(args.loop)
    asyncio.set_event_loop(loop)
    try:
        # A small warm-up run first: imports, lazily created threads and
        # first-call caches are not what is being measured.
        if not args.no_warmup:
            workload.run(loop, max(1, args.size // 10))
        gc.collect()
        ops, seconds = workload.run(loop, args.size)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    record = {
        "ops": ops,
        "seconds": seconds,
        "ops_per_sec": ops / seconds,
        # Proves which loop really ran: a silent fallback would be a lie.
        "loop_class": f"{type(loop).__module__}.{type(loop).__qualname__}",
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    sys.exit(main())
