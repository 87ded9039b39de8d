"""Every CPython asyncio test that does not run on cxxloop, with the reason.

Keys are "<Class>::<test>" as pytest shows them under tests/cpython
(EventLoopTests is test_events' EventLoopTestsMixin; other classes are
"<module>__<Class>"), or "*::<test>" for any class. SKIPS are fair skips:
features of later issues, or tests of the stdlib loop's internals.
EXPECTED_FAILURES are behaviour differences still to fix; they are strict
xfails, so a fix shows up as an unexpected pass.
"""

_STREAMS = "needs stream transports / servers / sock_* (issue 3)"
_TLS = "needs TLS over stream transports (issue 4)"
_DATAGRAM = "needs datagram transports (issue 4)"
_PIPES = "needs pipe transports (issue 4)"


def _each(reason, *tests):
    return {f"EventLoopTests::{t}": reason for t in tests}


SKIPS: dict[str, str] = {
    **_each(
        _STREAMS,
        "test_connect_accepted_socket",
        "test_create_connection",
        "test_create_connection_local_addr",
        "test_create_connection_local_addr_skip_different_family",
        "test_create_server",
        "test_create_server_addr_in_use",
        "test_create_server_dual_stack",
        "test_create_server_reuse_port",
        "test_create_server_sock",
        "test_create_server_trsock",
        "test_create_unix_connection",
        "test_create_unix_server",
        "test_create_unix_server_path_socket_error",
        "test_prompt_cancellation",
        "test_server_close",
    ),
    **_each(
        _TLS,
        "test_create_server_ssl",
        "test_create_server_ssl_match_failed",
        "test_create_server_ssl_verified",
        "test_create_server_ssl_verify_failed",
        "test_create_ssl_connection",
        "test_create_ssl_unix_connection",
        "test_create_unix_server_ssl",
        "test_create_unix_server_ssl_verified",
        "test_create_unix_server_ssl_verify_failed",
        "test_ssl_connect_accepted_socket",
    ),
    **_each(
        _DATAGRAM,
        "test_create_datagram_endpoint",
        "test_create_datagram_endpoint_ipv6",
        "test_create_datagram_endpoint_sock",
        "test_datagram_send_to_non_listening_address",
    ),
    **_each(
        _PIPES,
        "test_bidirectional_pty",
        "test_read_pipe",
        "test_read_pty_output",
        "test_unclosed_pipe_transport",
        "test_write_pipe",
        "test_write_pipe_disconnect_on_close",
        "test_write_pty",
    ),
    # Counts iterations by replacing loop._run_once with a Python wrapper and
    # reads loop._selector; cxxloop's run loop is C++ and never calls a
    # Python-level _run_once. What the test protects (a timeout rounded so
    # the loop does not spin) is covered by test_scheduling.py's
    # never-early sleep tests and the poller's nanosecond timeouts.
    "EventLoopTests::test_timeout_rounding": "patches the stdlib loop's Python _run_once and reads _selector",
}

EXPECTED_FAILURES: dict[str, str] = {}
