"""Which of CPython's asyncio test modules run against cxxloop, and how.

Every unittest.TestCase of the MODULES is re-exported for pytest with its
loop retargeted (conftest.py): the event loop policy makes cxxloop loops,
and test_utils.TestCase.new_test_loop() returns a cxxloop loop unless the
test drives asyncio's virtual-time TestLoop with a time generator. Classes
that pin the stdlib's own loops (names starting Selector/Proactor, and the
Windows ones) are left out: MIXINS re-runs their loop-agnostic bases with
cxxloop instead. A module missing from an older Python is simply absent.
"""

MODULES = [
    "test_tasks",
    "test_futures",
    "test_futures2",
    "test_locks",
    "test_queues",
    "test_taskgroups",
    "test_timeouts",
    "test_runners",
    "test_waitfor",
    "test_pep492",
    "test_eager_task_factory",
    "test_context",
    "test_threads",
    "test_staggered",
    "test_streams",
    "test_server",
    "test_subprocess",
    "test_ssl",
    "test_sslproto",
    "test_unix_events",
]

# (module, loop-agnostic base class, the method that makes its loop, TestCase
# base the stdlib pairs it with: "utils" for test_utils.TestCase).
MIXINS = [
    ("test_events", "EventLoopTestsMixin", "create_event_loop", "utils"),
    ("test_sock_lowlevel", "BaseSockTestsMixin", "create_event_loop", "utils"),
    ("test_sendfile", "SendfileTestsBase", "create_event_loop", "utils"),
    ("test_server", "BaseStartServer", "new_loop", "unittest"),
    ("test_buffered_proto", "BaseTestBufferedProtocol", "new_loop", "unittest"),
    ("test_sslproto", "BaseStartTLS", "new_loop", "unittest"),
]

PINNED_PREFIXES = ("Selector", "Proactor", "Windows", "Win")
