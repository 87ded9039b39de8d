"""Which of CPython's asyncio test modules run against cxxloop, and how.

Every unittest.TestCase of these modules is re-exported for pytest with its
loop retargeted (conftest.py): the event loop policy makes cxxloop loops,
and test_utils.TestCase.new_test_loop() returns a cxxloop loop unless the
test drives asyncio's virtual-time TestLoop with a time generator.
"""

# Modules whose tests need only what cxxloop has today: callbacks, timers,
# tasks, futures, executors, signals. A module missing from an older
# Python's test package is simply absent there.
LOOP_GENERIC = [
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
]
