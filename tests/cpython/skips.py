"""Every CPython asyncio test that does not run on cxxloop, with the reason.

Keys are "<module>__<Class>::<test>" as pytest shows them under
tests/cpython, "*::<test>" for any class, or a whole class
"<module>__<Class>". SKIPS are fair skips: tests of the stdlib loop's
internals. EXPECTED_FAILURES are behaviour differences still to fix; they
are strict xfails, so a fix shows up as an unexpected pass.
"""

SKIPS: dict[str, str] = {
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
    # Holds back the TLS layer's output by calling pause_writing() on
    # asyncio's SSLProtocol (transport._ssl_protocol): cxxloop's TLS
    # transport is a single C++ object with no SSLProtocol inside. That
    # what is written before close() is all sent before the close_notify,
    # even to a peer that stops reading, is checked on both loops by
    # tests/test_tls_parity.py.
    "test_ssl__TestSSL::test_flush_before_shutdown": "pauses asyncio's SSLProtocol inside its TLS transport",
}

EXPECTED_FAILURES: dict[str, str] = {}
