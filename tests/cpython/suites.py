"""Which of CPython's asyncio test modules run against cxxloop, and how.

Every unittest.TestCase of the MODULES is re-exported for pytest with its
loop retargeted (conftest.py): the event loop policy makes cxxloop loops,
and test_utils.TestCase.new_test_loop() returns a cxxloop loop unless the
test drives asyncio's virtual-time TestLoop with a time generator. Classes
that pin the stdlib's own loops (names starting Selector/Proactor, and the
Windows ones) are left out: MIXINS re-runs their loop-agnostic bases with
cxxloop instead, and CLASSES picks single classes out of modules that are
otherwise about the stdlib's own loop. A module or class missing from an
older Python is simply absent.

Modules of test.test_asyncio that are not listed, and why:
  test_base_events      BaseEventLoop, SelectorEventLoop and
                        BaseSelectorEventLoop instances the tests make
                        themselves, with mocked selectors; its one test
                        on a policy-made loop is in CLASSES
  test_selector_events  the stdlib selector loop and its Python transports
  test_proactor_events, test_windows_events, test_windows_utils  Windows
  test_protocols, test_transports  the abstract base classes, no loop
  test_tools            asyncio.tools (`python -m asyncio ps/pstree`)
                        formatting canned remote-debugging records; no loop
Classes of test_events besides CLASSES and the mixins: HandleTests and
TimerTests (asyncio's Handle classes on a mock loop), AbstractEventLoopTests,
PolicyTests (asyncio's policies), UnixPipeObjectSupportTests (a
SelectorEventLoop it makes itself).
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
    "test_free_threading",  # 3.14+: tasks and loops in many threads (runs with the GIL too)
    "test_graph",  # 3.14+: asyncio.capture_call_graph over running tasks
    "test_server_context",  # 3.15+: server callbacks run in the server's context
]

# (module, loop-agnostic base classes, the method that makes its loop, TestCase
# base the stdlib pairs them with: "utils" for test_utils.TestCase). The
# published class is named after the first base; SubprocessTestsMixin has no
# setUp of its own and relies on EventLoopTestsMixin's, as in the stdlib.
MIXINS = [
    ("test_events", ("EventLoopTestsMixin", "SubprocessTestsMixin"), "create_event_loop", "utils"),
    ("test_sock_lowlevel", ("BaseSockTestsMixin",), "create_event_loop", "utils"),
    ("test_sendfile", ("SendfileTestsBase",), "create_event_loop", "utils"),
    ("test_server", ("BaseStartServer",), "new_loop", "unittest"),
    ("test_buffered_proto", ("BaseTestBufferedProtocol",), "new_loop", "unittest"),
    ("test_sslproto", ("BaseStartTLS",), "new_loop", "unittest"),
]

# (module, class): run as they are; their loops come from the policy.
CLASSES = [
    ("test_events", "TestPyGetEventLoop"),  # get_running_loop & co., Python versions
    ("test_events", "TestCGetEventLoop"),  # the same, C versions
    ("test_events", "TestServer"),
    ("test_events", "TestAbstractServer"),
    ("test_base_events", "RunningLoopTests"),
]

PINNED_PREFIXES = ("Selector", "Proactor", "Windows", "Win")
