"""Subprocesses on cxxloop: exit watched by a pidfd in the poller (with the
thread fallback), real pipes for stdio, a preexec_fn that does not stall
the loop, Popen's arguments, and asyncio's process semantics."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import cxxloop
import parity
from parity import open_fds

PY = sys.executable


def run(coro):
    return parity.run(coro, timeout=60)


def test_exit_is_watched_by_a_pidfd_without_threads():
    async def main():
        loop = asyncio.get_running_loop()
        threads = threading.active_count()
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(0.2)")
        assert len(loop._child_pidfds) == 1
        assert threading.active_count() == threads
        assert await proc.wait() == 0
        assert loop._child_pidfds == {}

    before = open_fds()
    run(main())
    assert open_fds() == before


def test_without_pidfd_a_thread_waits(monkeypatch):
    def refuse(pid, flags=0):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "pidfd_open", refuse)

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(0.2)")
        names = {t.name for t in threading.enumerate()}
        assert f"cxxloop-waitpid-{proc.pid}" in names
        return await proc.wait()

    assert run(main()) == 0


def test_stdio_are_real_pipes():
    child = (
        "import os, stat, sys\n"
        "print(all(stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in (0, 1, 2)))\n"
        "print(open('/proc/self/fd/0').read())\n"
    )

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", child, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate(b"via /proc")
        return out.decode().split(), err

    assert run(main()) == (["True", "via", "/proc"], b"")


def test_a_slow_preexec_fn_does_not_stall_the_loop():
    async def main():
        ticks = []

        async def ticker():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.05)
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass", preexec_fn=lambda: time.sleep(1))
        await proc.wait()
        task.cancel()
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        return max(gaps), proc.returncode

    # Popen blocks its caller for the whole preexec_fn; the loop kept ticking.
    longest_gap, returncode = run(main())
    assert returncode == 0
    assert longest_gap < 0.5


def test_popen_arguments_pass_through(tmp_path):
    r, w = os.pipe()
    child = (
        "import os, sys\n"
        "print(os.getcwd(), os.environ['MARK'], os.getsid(0) == os.getpid(), os.umask(0), sep='|')\n"
        f"os.write({w}, b'passed fd')\n"
    )

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", child, stdout=subprocess.PIPE, cwd=tmp_path, env={"MARK": "env ok"},
            start_new_session=True, pass_fds=(w,), umask=0o027)
        out, _ = await proc.communicate()
        return out.decode().strip()

    try:
        out = run(main())
        assert out == f"{tmp_path}|env ok|True|23"
        assert os.read(r, 100) == b"passed fd"
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("loop_factory", [cxxloop.new_event_loop, asyncio.SelectorEventLoop],
                         ids=["cxxloop", "asyncio"])
def test_process_semantics_match_asyncio(loop_factory):
    async def main():
        results = {}
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import sys; sys.exit(3)")
        results["exit"] = await proc.wait()
        proc = await asyncio.create_subprocess_shell("exit 7")
        results["shell"] = await proc.wait()
        for name in ("kill", "terminate"):
            proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(30)")
            getattr(proc, name)()
            results[name] = await proc.wait()
        proc = await asyncio.create_subprocess_exec(
            PY, "-c",
            "import signal, sys, time\n"
            "signal.signal(signal.SIGUSR1, lambda *a: sys.exit(5))\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)\n",
            stdout=subprocess.PIPE)
        await proc.stdout.readline()
        proc.send_signal(signal.SIGUSR1)
        results["signal"] = await proc.wait()
        results["wait again"] = await proc.wait()
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        results["communicate"] = await proc.communicate(b"hello")
        with pytest.raises(ProcessLookupError):
            proc.kill()  # already exited
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec("/nonexistent/program")
        return results

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        results = runner.run(asyncio.wait_for(main(), 60))
    assert results == {
        "exit": 3, "shell": 7, "kill": -signal.SIGKILL, "terminate": -signal.SIGTERM,
        "signal": 5, "wait again": 5, "communicate": (b"HELLO", None),
    }


def test_many_children_at_once_are_all_reaped():
    async def main():
        procs = [await asyncio.create_subprocess_exec(PY, "-c", f"import sys; sys.exit({i % 7})")
                 for i in range(40)]
        return await asyncio.gather(*(p.wait() for p in procs))

    before = open_fds()
    assert run(main()) == [i % 7 for i in range(40)]
    assert open_fds() == before


def test_closing_the_loop_releases_the_pidfds_of_running_children():
    before = open_fds()
    loop = cxxloop.new_event_loop()
    proc = loop.run_until_complete(
        asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(30)"))
    assert loop._child_pidfds
    proc._transport.close()  # kills the child, which the loop will never reap
    loop.close()
    assert loop._child_pidfds == {}
    proc._transport._proc.wait()  # reaped here instead
    assert open_fds() == before


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="the child watcher API is gone in 3.14")
# Using the deprecated API is the point of this test.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_watcher_set_through_the_deprecated_api_is_honoured():
    class Recording(asyncio.ThreadedChildWatcher):
        pids: list[int] = []

        def add_child_handler(self, pid, callback, *args):
            Recording.pids.append(pid)
            super().add_child_handler(pid, callback, *args)

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass")
        return proc.pid, await proc.wait()

    policy = asyncio.get_event_loop_policy()
    watcher = Recording()
    policy.set_child_watcher(watcher)
    try:
        pid, code = run(main())
    finally:
        policy.set_child_watcher(None)
        watcher.close()
    assert (Recording.pids, code) == ([pid], 0)
