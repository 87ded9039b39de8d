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
}

EXPECTED_FAILURES: dict[str, Reason] = {}

# Well above what these tests take when they pass (about a second), low
# enough that a hang costs little of the CI budget.
HANG_TIMEOUT = 20

HANGS: dict[str, Reason] = {}
