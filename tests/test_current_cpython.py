"""What asyncio gained in 3.14 and 3.15, on cxxloop: the task inspection
tools, call graphs, TaskGroup.cancel(); and cxxloop without asyncio's
event loop policies, which 3.16 removes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from parity import agree

needs_314 = pytest.mark.skipif(sys.version_info < (3, 14), reason="asyncio's call graphs and ps/pstree are 3.14's")


CHILD = textwrap.dedent("""
    import asyncio, cxxloop

    async def worker(event):
        await event.wait()

    async def main():
        event = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(worker(event), name="cxx-worker-1")
            tg.create_task(worker(event), name="cxx-worker-2")
            await asyncio.sleep(0)
            print("ready", flush=True)
            await asyncio.sleep(60)
            event.set()

    cxxloop.run(main())
""")


@needs_314
def test_asyncio_ps_and_pstree_list_a_cxxloop_processs_tasks():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        outputs = {}
        for command in ("ps", "pstree"):
            done = subprocess.run([sys.executable, "-m", "asyncio", command, str(child.pid)],
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            outputs[command] = done.stdout
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    ps_rows = [line.split() for line in outputs["ps"].splitlines() if "cxx-worker" in line]
    assert sorted(row[2] for row in ps_rows) == ["cxx-worker-1", "cxx-worker-2"]
    assert all("Task-1" in row for row in ps_rows)  # awaited by the main task
    tree = outputs["pstree"]
    assert "(T) Task-1" in tree and "(T) cxx-worker-1" in tree and "(T) cxx-worker-2" in tree
    assert tree.index("Task-1") < tree.index("cxx-worker-1")


@needs_314
def test_capture_call_graph_inside_cxxloop_tasks():
    async def main():
        graphs = {}

        async def leaf():
            graphs["leaf"] = asyncio.capture_call_graph()
            await asyncio.sleep(0)

        async def middle():
            await leaf()

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(middle(), name="middle")
            await asyncio.sleep(0)
            graphs["task"] = asyncio.capture_call_graph(task)

        def shape(graph):
            # Unnamed tasks are numbered process-wide: only "a task" compares.
            name = graph.future.get_name()
            return ("a task" if name.startswith("Task-") else name,
                    [entry.frame.f_code.co_name for entry in graph.call_stack],
                    [shape(g) for g in graph.awaited_by])

        return {name: shape(graph) for name, graph in graphs.items()}, asyncio.format_call_graph().count("\n") > 0

    graphs, formatted = agree(main)
    assert graphs["leaf"][:2] == ("middle", ["leaf", "middle"])
    assert graphs["task"][:2] == ("middle", ["sleep", "leaf", "middle"])
    assert formatted


@pytest.mark.skipif(not hasattr(asyncio.TaskGroup, "cancel"), reason="TaskGroup.cancel() is 3.15's")
def test_taskgroup_cancel():
    async def main():
        events = []

        async def child(name):
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                events.append(name)
                raise

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(child(n)) for n in ("a", "b")]
            await asyncio.sleep(0)
            tg.cancel()
        return sorted(events), [t.cancelled() for t in tasks]

    assert agree(main) == (["a", "b"], [True, True])


HIDE_POLICIES = textwrap.dedent("""
    import asyncio, asyncio.events, asyncio.unix_events, sys, warnings
    warnings.simplefilter("error")
    # What 3.16 removes: the policy classes and functions (and 3.14's
    # module __getattr__ that serves them with a warning).
    for module in (asyncio, asyncio.events, asyncio.unix_events):
        for name in ("AbstractEventLoopPolicy", "BaseDefaultEventLoopPolicy", "DefaultEventLoopPolicy",
                     "_UnixDefaultEventLoopPolicy", "get_event_loop_policy", "set_event_loop_policy",
                     "_get_event_loop_policy", "_set_event_loop_policy", "_event_loop_policy",
                     "__getattr__"):
            vars(module).pop(name, None)
    import cxxloop
    assert not hasattr(cxxloop, "EventLoopPolicy")

    async def main():
        await asyncio.sleep(0)
        return "ran"

    assert cxxloop.run(main()) == "ran"
    if sys.version_info >= (3, 12):  # asyncio.run's loop_factory
        assert asyncio.run(main(), loop_factory=cxxloop.new_event_loop) == "ran"
    with asyncio.Runner(loop_factory=cxxloop.new_event_loop) as runner:
        assert runner.run(main()) == "ran"
    print("ok")
""")


def test_cxxloop_imports_and_runs_where_asyncio_has_no_policies():
    done = subprocess.run([sys.executable, "-c", HIDE_POLICIES], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_importing_and_running_warns_of_nothing():
    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("error")
        import asyncio, sys, cxxloop
        async def main():
            return 1
        assert cxxloop.run(main()) == 1
        if sys.version_info >= (3, 12):  # asyncio.run's loop_factory
            assert asyncio.run(main(), loop_factory=cxxloop.new_event_loop) == 1
        with asyncio.Runner(loop_factory=cxxloop.new_event_loop) as r:
            assert r.run(main()) == 1
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

