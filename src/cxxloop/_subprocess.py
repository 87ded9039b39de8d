"""Subprocess creation and exit watching for cxxloop.Loop.

asyncio's Unix loop asks the policy's child watcher, a process-wide object
that on 3.11 is a thread per child and is deprecated from 3.12. cxxloop's
Loop watches its own children instead: a pidfd registered in the loop's
poller becomes readable when the child exits, and the loop reaps it then,
with no thread and no SIGCHLD handler. Where pidfd_open is missing or
refused (old kernels, seccomp), a thread per child waits, as asyncio's
ThreadedChildWatcher does. A watcher of another kind (SafeChildWatcher,
a program's own) set through asyncio's deprecated child-watcher API is
honoured: asyncio's own path is taken then.

subprocess.Popen runs on the loop's thread, as in asyncio, except with a
preexec_fn: Popen waits for the child to exec, so a slow preexec_fn would
stall every other callback; it runs in the default executor then.
Everything after Popen is asyncio's _UnixSubprocessTransport, with real
pipes (not socketpairs) for stdin, stdout and stderr.
"""

from __future__ import annotations

import contextvars
import functools
import os
import subprocess
import threading
from asyncio.log import logger
from typing import TYPE_CHECKING, Any

from . import _asyncio_internals as internals

if TYPE_CHECKING:
    # The asyncio loop the mixin is part of, for the type checker only:
    # at run time it is a plain class, and Loop's other bases give it that.
    from asyncio import BaseEventLoop as _LoopBase
    from asyncio import Handle
    from collections.abc import Callable
else:
    _LoopBase = object


class _SubprocessTransport(internals.UnixSubprocessTransport):
    """asyncio's transport around a child started beforehand."""

    def _start(self, args: Any, shell: bool, stdin: Any, stdout: Any, stderr: Any, bufsize: int,
               popen: subprocess.Popen[bytes], **kwargs: Any) -> None:
        self._proc = popen


def _popen(args: Any, shell: bool, stdin: Any, stdout: Any, stderr: Any, bufsize: int,
           **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
                            universal_newlines=False, bufsize=bufsize, **kwargs)


def _reap(pid: int) -> int:
    """The exit code of the exited child `pid`, as asyncio's watchers give it."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        # Reaped elsewhere (a waitpid(-1) somewhere in the program).
        logger.warning("child process pid %d exit status already read: will report returncode 255", pid)
        return 255
    return os.waitstatus_to_exitcode(status)


class Subprocesses(_LoopBase):
    """Mixin of Loop. Needs the loop's _add_reader/_remove_reader,
    call_soon_threadsafe, run_in_executor and create_future."""

    if TYPE_CHECKING:
        # The C++ core's (CoreLoop), which comes first among Loop's bases.
        def _add_reader(self, fd: int, callback: Callable[..., object], /, *args: Any,
                        context: contextvars.Context | None = None) -> Handle: ...
        def _remove_reader(self, fd: int, /) -> bool: ...

    def __init__(self) -> None:
        self._child_pidfds: dict[int, int] = {}  # pidfd -> pid, still running

    async def _make_subprocess_transport(self, protocol: Any, args: Any, shell: bool, stdin: Any,
                                         stdout: Any, stderr: Any, bufsize: int, extra: Any = None,
                                         **kwargs: Any) -> Any:
        if internals.child_watcher_of_policy() is not None:
            return await super()._make_subprocess_transport(  # type: ignore[misc]
                protocol, args, shell, stdin, stdout, stderr, bufsize, extra=extra, **kwargs
            )
        start = functools.partial(_popen, args, shell, stdin, stdout, stderr, bufsize, **kwargs)
        popen = await self.run_in_executor(None, start) if kwargs.get("preexec_fn") else start()
        waiter = self.create_future()
        transp = _SubprocessTransport(self, protocol, args, shell, stdin, stdout, stderr, bufsize,
                                      waiter=waiter, extra=extra, popen=popen)
        self._watch_child(transp.get_pid(), transp)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp

    def _watch_child(self, pid: int, transp: Any) -> None:
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            threading.Thread(target=self._wait_in_thread, args=(pid, transp), daemon=True,
                             name=f"cxxloop-waitpid-{pid}").start()
            return
        self._child_pidfds[pidfd] = pid
        # The exit is reported in the context asyncio's own watcher reports
        # it in: the watcher thread's empty one on 3.11, the caller's since.
        context = contextvars.Context() if internals.CHILD_EXIT_IN_EMPTY_CONTEXT else None
        self._add_reader(pidfd, self._child_exited, pidfd, transp, context=context)

    def _child_exited(self, pidfd: int, transp: Any) -> None:
        self._remove_reader(pidfd)
        pid = self._child_pidfds.pop(pidfd)
        os.close(pidfd)
        transp._process_exited(_reap(pid))

    def _wait_in_thread(self, pid: int, transp: Any) -> None:
        returncode = _reap(pid)
        try:
            self.call_soon_threadsafe(transp._process_exited, returncode)
        except RuntimeError:
            pass  # the loop was closed meanwhile: nobody waits for the exit

    def _close_child_watches(self) -> None:
        """On close: the pidfds of children still running are the loop's."""
        for pidfd in self._child_pidfds:
            os.close(pidfd)
        self._child_pidfds.clear()
