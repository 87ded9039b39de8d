"""Every CPython asyncio test that does not run on cxxloop, with the reason.

Keys are "<module>__<Class>::<test>" as pytest shows them under
tests/cpython, "*::<test>" for any class, or a whole class
"<module>__<Class>". SKIPS are fair skips: tests of the stdlib loop's
internals. EXPECTED_FAILURES are behaviour differences still to fix; they
are strict xfails, so a fix shows up as an unexpected pass. HANGS are
expected failures that would wait forever: each is also ended by a
timeout of HANG_TIMEOUT seconds. A reason made with since() applies from
that CPython version on only: the test, or what asyncio asks of its loop,
changed there; without it, an entry applies wherever the test exists.
"""


def since(version: str, reason: str) -> tuple[tuple[int, ...], str]:
    return tuple(int(part) for part in version.split(".")), reason


Reason = str | tuple[tuple[int, ...], str]

SKIPS: dict[str, Reason] = {
    # Counts iterations by replacing loop._run_once with a Python wrapper:
    # cxxloop's run loop is C++ and never calls a Python-level _run_once.
    # What it protects (no spinning on a rounded-down timeout) is covered by
    # the poller's nanosecond timeouts and tests/test_scheduling.py.
    "test_events__EventLoopTestsMixin::test_timeout_rounding": "patches the stdlib loop's Python _run_once",
    # Checks the stdlib loop's self-pipe (_internal_fds, _ssock, _csock);
    # cxxloop wakes its poller with an eventfd owned by the C++ core, and
    # tests/test_lifecycle.py checks that close() releases every fd.
    "test_events__EventLoopTestsMixin::test_internal_fds": "inspects the stdlib loop's self-pipe sockets",
    # Unit tests of asyncio's own Python pipe transport classes, driven
    # through TestLoop's assert_reader/assert_writer bookkeeping. cxxloop's
    # pipe transports are C++; tests/test_pipes.py runs the same cases
    # against both loops' real transports.
    "test_unix_events__UnixReadPipeTransportTests": "unit tests of asyncio's _UnixReadPipeTransport on TestLoop",
    "test_unix_events__UnixWritePipeTransportTests": "unit tests of asyncio's _UnixWritePipeTransport on TestLoop",
    # The second half fakes a full socket buffer by swapping the stdlib
    # _SelectorSocketTransport's _sock once its _read_ready_cb is None (the
    # path of a selector-transport bug). cxxloop's transport is C++ and has
    # neither: the patch raises AttributeError inside write(), the connection
    # aborts, and the test's server thread then loops forever on EOF, so the
    # test's own cleanup (joining that thread) never returns and no timeout
    # can end it. 3.13.0 has the test without that half and runs it; on
    # 3.14+ no test of ours covers its first half yet (a backlog written
    # before the peer's close_notify still reaches the peer).
    "test_ssl__TestSSL::test_remote_shutdown_receives_trailing_data_on_slow_socket": since(
        "3.14", "patches the stdlib _SelectorSocketTransport's _sock/_read_ready_cb; hangs in its cleanup"
    ),
    # The stdlib loop's child watcher: its type, and its per-child threads.
    # cxxloop watches exits with a pidfd in its own poller (a thread where
    # there is none). What the second protects, that send_signal() never
    # signals a reaped PID, runs on cxxloop as
    # test_send_signal_never_targets_reaped_pid in the same classes.
    "test_subprocess__SubprocessThreadedWatcherTests::test_watcher_implementation": "checks the type of the stdlib loop's _watcher",
    "test_subprocess__SubprocessPidfdWatcherTests::test_watcher_implementation": "checks the type of the stdlib loop's _watcher",
    "test_subprocess__SubprocessThreadedWatcherTests::test_pid_not_reaped_before_exit_published": "reads the stdlib _ThreadedChildWatcher's threads",
    # Hands a Mock "socket" (fileno 12345, send() raising BrokenPipeError)
    # to _make_socket_transport: asyncio's transport calls the mock's send(),
    # cxxloop's C++ transport makes syscalls on fd 12345 and gets EBADF. No
    # fix to the loop could make it pass. What it checks, connection_lost
    # after a failed write under TLS, has no test of ours yet.
    "test_sslproto__SslProtoHandshakeTests::test_connection_lost_when_busy": "drives the transport with a Mock socket",
}

# Module-level lookups that tests swap out: cxxloop looks up asyncio.Task,
# asyncio.Future and asyncio.events._set_running_loop once at import, while
# asyncio looks them up at each call. Tests that install the pure-Python
# Task/Future or running-loop functions then see C objects, or no loop.
_CACHED_AT_IMPORT = "loop makes the asyncio.Task/Future (or sets the running loop) it looked up at import"

EXPECTED_FAILURES: dict[str, Reason] = {
    "test_free_threading__TestPyFreeThreading::test_all_tasks_from_other_thread_includes_eager_tasks": _CACHED_AT_IMPORT,
    "test_free_threading__TestEagerPyFreeThreading::test_all_tasks_from_other_thread_includes_eager_tasks": _CACHED_AT_IMPORT,
    "test_events__TestPyGetEventLoop::test_get_running_loop_already_running": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_call_graph_finished_task": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_capture_call_graph_generator_keeps_caller_frames": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_as_completed": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_as_completed_timeout": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_async_gen": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_future": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_gather": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_gather_survivor": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_shield": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_task": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_tgroup": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_timeout": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_wait": _CACHED_AT_IMPORT,
    "test_graph__TestCallStackPy::test_stack_wait_for_non_positive_timeout": _CACHED_AT_IMPORT,
    # asyncio (3.14) leaves the file at offset + bytes sent even when nothing
    # was sent (offset at the end of the file); the native path leaves the
    # file position where it was.
    "test_sendfile__SendfileTestsBase::test_sendfile_offset": "loop.sendfile sending nothing leaves the file position unchanged",
}

# Well above what these tests take when they pass (about a second), low
# enough that a hang costs little of the CI budget.
HANG_TIMEOUT = 20

# 3.14's call_soon_threadsafe returns an events._ThreadSafeHandle, whose
# cancel() and cancelled() wait while its callback runs in another thread;
# cxxloop returns a plain Handle. The test's thread fails its isinstance
# check and so never stops the loop.
_THREADSAFE_HANDLE = "call_soon_threadsafe returns a Handle, not events._ThreadSafeHandle"

HANGS: dict[str, Reason] = {
    "test_events__EventLoopTestsMixin::test_call_soon_threadsafe_handle_block_check_cancelled": _THREADSAFE_HANDLE,
    "test_events__EventLoopTestsMixin::test_call_soon_threadsafe_handle_block_cancellation": _THREADSAFE_HANDLE,
    "test_events__EventLoopTestsMixin::test_call_soon_threadsafe_handle_cancel_other_thread": _THREADSAFE_HANDLE,
}
