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
    "test_subprocess__SubprocessThreadedWatcherTests::test_watcher_implementation":
        "checks the type of the stdlib loop's _watcher",
    "test_subprocess__SubprocessPidfdWatcherTests::test_watcher_implementation":
        "checks the type of the stdlib loop's _watcher",
    "test_subprocess__SubprocessThreadedWatcherTests::test_pid_not_reaped_before_exit_published":
        "reads the stdlib _ThreadedChildWatcher's threads",
    # Hands a Mock "socket" (fileno 12345, send() raising BrokenPipeError)
    # to _make_socket_transport: asyncio's transport calls the mock's send(),
    # cxxloop's C++ transport makes syscalls on fd 12345 and gets EBADF. No
    # fix to the loop could make it pass. What it checks, connection_lost
    # after a failed write under TLS, has no test of ours yet.
    "test_sslproto__SslProtoHandshakeTests::test_connection_lost_when_busy": "drives the transport with a Mock socket",
    # Waits for the server's transport to pause by polling the stdlib
    # _SelectorSocketTransport's _paused (over TLS: the _app_reading_paused of
    # asyncio's SSLProtocol inside the transport). cxxloop's transports have
    # neither: the read raises AttributeError in the protocol's task, reading
    # stays paused, and over plain TCP the connection never closes, so the
    # test, then its cleanup, wait forever.
    "test_server_context__AsyncioEventLoopTests::test_gh140947":
        "polls the stdlib _SelectorSocketTransport's _paused; hangs",
    "test_server_context__AsyncioEventLoopSSLTests::test_gh140947":
        "polls asyncio's SSLProtocol inside its TLS transport",
    # Records the transport by patching asyncio's SSLProtocol.connection_made,
    # which cxxloop's C++ TLS transport never calls. That a connection whose
    # certificate fails verification leaves no cycle behind is what
    # test_start_tls_failed_certificate_no_cycles checks on cxxloop too.
    "test_sslproto__BaseStartTLS::test_create_connection_ssl_failed_certificate_no_cycles":
        "patches asyncio's SSLProtocol.connection_made",
    # Holds back the TLS layer's output by calling pause_writing() on
    # asyncio's SSLProtocol (transport._ssl_protocol): cxxloop's TLS
    # transport is a single C++ object with no SSLProtocol inside. That
    # what is written before close() is all sent before the close_notify,
    # even to a peer that stops reading, is checked on both loops by
    # tests/test_tls_parity.py.
    "test_ssl__TestSSL::test_flush_before_shutdown": "pauses asyncio's SSLProtocol inside its TLS transport",
}

EXPECTED_FAILURES: dict[str, Reason] = {
    # The test swaps asyncio's running-loop functions for their pure-Python
    # versions; cxxloop marks itself running through the C
    # asyncio.events._set_running_loop it looked up at import, so the
    # pure-Python get_running_loop() sees no loop.
    "test_events__TestPyGetEventLoop::test_get_running_loop_already_running":
        "sets the running loop through the function it looked up at import",
    # asyncio (3.14) leaves the file at offset + bytes sent even when nothing
    # was sent (offset at the end of the file); the native path leaves the
    # file position where it was.
    "test_sendfile__SendfileTestsBase::test_sendfile_offset":
        "loop.sendfile sending nothing leaves the file position unchanged",
}

# Five times the slowest CPython asyncio test on cxxloop (about 4 s here):
# what each listed hang costs of the CI budget.
HANG_TIMEOUT = 20

HANGS: dict[str, Reason] = {}
