"""Scaling the process-pool gather pattern beyond one machine with dask.

The coroutine is the same as with a local ProcessPoolExecutor: only the
executor changes. With no argument it starts a LocalCluster; with
`--scheduler tcp://host:8786` it sends the work to a running dask cluster,
whose workers may be on other machines.

    python examples/scale_out_dask.py [--scheduler ADDRESS] [--tasks N]
"""

import argparse
import asyncio
import contextlib
import os
import socket

import cxxloop


def crunch(n: int) -> tuple[int, str]:
    """CPU-bound work; returns the result and where it ran."""
    total = sum(i * i for i in range(n * 10_000))
    return total, f"{socket.gethostname()}:{os.getpid()}"


async def fan_out(executor, tasks: int) -> list[tuple[int, str]]:
    loop = asyncio.get_running_loop()
    return await asyncio.gather(*(loop.run_in_executor(executor, crunch, n) for n in range(tasks)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", help="address of a dask scheduler; default: a LocalCluster")
    parser.add_argument("--tasks", type=int, default=24)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if args.scheduler:
            client = stack.enter_context(Client(args.scheduler))
        else:
            cluster = stack.enter_context(
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
            )
            client = stack.enter_context(Client(cluster))
        results = cxxloop.run(fan_out(client.get_executor(), args.tasks))

    places = sorted({where for _, where in results})
    print(f"{len(results)} results, checksum {sum(total for total, _ in results)}")
    print(f"computed on {len(places)} worker processes: {', '.join(places)}")


if __name__ == "__main__":
    main()
