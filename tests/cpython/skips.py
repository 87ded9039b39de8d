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
    # Waits for the server's transport to pause by polling the stdlib
    # _SelectorSocketTransport's _paused. On cxxloop's transport that read
    # raises AttributeError in the protocol's task, reading stays paused, the
    # connection never closes and the test, then its cleanup, wait forever.
    # Its TLS twin (AsyncioEventLoopSSLTests) polls asyncio's own SSL
    # protocol instead and runs.
    "test_server_context__AsyncioEventLoopTests::test_gh140947": "polls the stdlib _SelectorSocketTransport's _paused; hangs",
}

# Module-level lookups that tests swap out: cxxloop looks up asyncio.Task,
# asyncio.Future and asyncio.events._set_running_loop once at import, while
# asyncio looks them up at each call. Tests that install the pure-Python
# Task/Future or running-loop functions then see C objects, or no loop.
_CACHED_AT_IMPORT = "loop makes the asyncio.Task/Future (or sets the running loop) it looked up at import"

# 3.15's asyncio passes context= (the server's, or the connection's
# context) to the loop's transport hooks; cxxloop's hooks do not take it,
# so every server and every connection made through asyncio fails.
_CONTEXT = since("3.15", "_start_serving/_make_socket_transport/_make_ssl_transport take no context=")

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
    "test_buffered_proto__BaseTestBufferedProtocol::test_buffered_proto_create_connection": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_connect_accepted_socket": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_connection": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_connection_local_addr": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_server": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_server_addr_in_use": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_server_dual_stack": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_server_reuse_port": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_server_sock": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_server_ssl": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_server_ssl_match_failed": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_server_ssl_verified": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_server_ssl_verify_failed": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_server_trsock": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_ssl_connection": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_ssl_unix_connection": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_unix_connection": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_unix_server": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_unix_server_ssl": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_unix_server_ssl_verified": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_create_unix_server_ssl_verify_failed": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_server_close": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_ssl_connect_accepted_socket": _CONTEXT,
    "test_events__EventLoopTestsMixin::test_writelines_empty_chunk": _CONTEXT,
    "test_events__TestServer::test_get_loop": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_close_peer_after_receiving": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_close_peer_in_the_middle_of_receiving": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_fallback_close_peer_in_the_middle_of_receiving": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_for_closing_transp": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_force_fallback": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_force_unsupported_native": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_partial": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_pre_and_post_data": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_prevents_bare_write": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_ssl": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_ssl_close_peer_after_receiving": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_ssl_partial": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sendfile_ssl_pre_and_post_data": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sock_sendfile_mix_with_regular_send": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sock_sendfile_offset": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sock_sendfile_success": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sock_sendfile_with_offset_and_count": _CONTEXT,
    "test_sendfile__SendfileTestsBase::test_sock_sendfile_zero_size": _CONTEXT,
    "test_server__BaseStartServer::test_start_server_1": _CONTEXT,
    "test_server__TestServer2": _CONTEXT,
    "test_server__UnixServerCleanupTests": _CONTEXT,
    "test_server_context__AsyncioEventLoopSSLTests": _CONTEXT,
    "test_server_context__AsyncioEventLoopTests": _CONTEXT,
    "test_sock_lowlevel__BaseSockTestsMixin::test_create_connection_sock": _CONTEXT,
    "test_ssl__TestSSL::test_connect_timeout_warning": _CONTEXT,
    "test_ssl__TestSSL::test_create_connection_memory_leak": _CONTEXT,
    "test_ssl__TestSSL::test_create_connection_ssl_1": _CONTEXT,
    "test_ssl__TestSSL::test_create_connection_ssl_failed_certificate": _CONTEXT,
    "test_ssl__TestSSL::test_create_connection_ssl_slow_handshake": _CONTEXT,
    "test_ssl__TestSSL::test_flush_before_shutdown": _CONTEXT,
    "test_ssl__TestSSL::test_handshake_timeout_handler_leak": _CONTEXT,
    "test_ssl__TestSSL::test_shutdown_cleanly": _CONTEXT,
    "test_ssl__TestSSL::test_shutdown_timeout_after_eof_from_not_reading_peer": _CONTEXT,
    "test_ssl__TestSSL::test_shutdown_timeout_handler_leak": _CONTEXT,
    "test_ssl__TestSSL::test_shutdown_timeout_handler_not_set": _CONTEXT,
    "test_ssl__TestSSL::test_ssl_handshake_connection_lost": _CONTEXT,
    "test_ssl__TestSSL::test_ssl_handshake_timeout": _CONTEXT,
    "test_ssl__TestSSL::test_start_tls_client_buf_proto_1": _CONTEXT,
    "test_ssl__TestSSL::test_start_tls_client_corrupted_ssl": _CONTEXT,
    "test_ssl__TestSSL::test_start_tls_client_reg_proto_1": _CONTEXT,
    "test_ssl__TestSSL::test_start_tls_server_1": _CONTEXT,
    "test_ssl__TestSSL::test_start_tls_slow_client_cancel": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_create_connection_memory_leak": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_create_connection_ssl_failed_certificate": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_create_connection_ssl_failed_certificate_no_cycles": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_create_connection_ssl_slow_handshake": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_handshake_timeout": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_start_tls_client_buf_proto_1": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_start_tls_client_corrupted_ssl": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_start_tls_client_reg_proto_1": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_start_tls_failed_certificate_no_cycles": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_start_tls_server_1": _CONTEXT,
    "test_sslproto__BaseStartTLS::test_start_tls_slow_client_cancel": _CONTEXT,
    "test_streams__StreamTests::test_async_writer_api": _CONTEXT,
    "test_streams__StreamTests::test_async_writer_api_exception_after_close": _CONTEXT,
    "test_streams__StreamTests::test_drain_raises": _CONTEXT,
    "test_streams__StreamTests::test_eof_feed_when_closing_writer": _CONTEXT,
    "test_streams__StreamTests::test_loop_is_closed_resource_warnings": _CONTEXT,
    "test_streams__StreamTests::test_open_connection": _CONTEXT,
    "test_streams__StreamTests::test_open_connection_error": _CONTEXT,
    "test_streams__StreamTests::test_open_connection_no_loop_ssl": _CONTEXT,
    "test_streams__StreamTests::test_open_unix_connection": _CONTEXT,
    "test_streams__StreamTests::test_open_unix_connection_error": _CONTEXT,
    "test_streams__StreamTests::test_open_unix_connection_no_loop_ssl": _CONTEXT,
    "test_streams__StreamTests::test_start_server": _CONTEXT,
    "test_streams__StreamTests::test_start_tls": _CONTEXT,
    "test_streams__StreamTests::test_start_tls_buffered_data": _CONTEXT,
    "test_streams__StreamTests::test_start_unix_server": _CONTEXT,
    "test_streams__StreamTests::test_unclosed_resource_warnings": _CONTEXT,
    "test_streams__StreamTests::test_unclosed_server_resource_warnings": _CONTEXT,
    "test_streams__StreamTests::test_unhandled_cancel": _CONTEXT,
    "test_streams__StreamTests::test_unhandled_exception": _CONTEXT,
    "test_streams__StreamTests::test_unhandled_exception_sync_callback": _CONTEXT,
    "test_streams__StreamTests::test_wait_closed_on_close": _CONTEXT,
    "test_streams__StreamTests::test_wait_closed_on_close_with_unread_data": _CONTEXT,
    "test_unix_events__TestFunctional::test_add_reader_or_writer_transport_fd": _CONTEXT,
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
    # The client's connection fails (context=), and the test's server
    # thread waits for it.
    "test_ssl__TestSSL::test_connect_accepted_socket": _CONTEXT,
    "test_ssl__TestSSL::test_remote_shutdown_receives_trailing_data": _CONTEXT,
}
