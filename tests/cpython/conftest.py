"""Retargets CPython's asyncio tests at cxxloop, applies skips.py, and
prints the pass count."""

import asyncio
import collections
import contextlib
import signal
import sys
import unittest

import pytest

import cxxloop
from cxxloop._asyncio_internals import set_event_loop_policy

from .skips import EXPECTED_FAILURES, HANG_TIMEOUT, HANGS, SKIPS

try:
    from test.test_asyncio import utils as test_utils
except ImportError:
    test_utils = None

# Tests that asked for asyncio's virtual-time TestLoop: they run, but they
# test asyncio's loop, not ours, and are counted apart.
_virtual_time_tests = set()
_current_test = [None]

if test_utils is not None:
    _stdlib_new_test_loop = test_utils.TestCase.new_test_loop

    def _new_test_loop(self, gen=None):
        if gen is not None:
            _virtual_time_tests.add(_current_test[0])
            return _stdlib_new_test_loop(self, gen)
        loop = cxxloop.new_event_loop()
        self.set_event_loop(loop)
        return loop

    test_utils.TestCase.new_test_loop = _new_test_loop


@pytest.fixture(autouse=True, scope="session")
def _python_sigint_handler():
    # CPython's tests expect the SIGINT handler Python installs at startup:
    # test_runners interrupts itself with _thread.interrupt_main(), which
    # does nothing if SIGINT is ignored, and then waits forever (on a loop
    # with a mocked selector that records every call, so it also eats
    # memory). SIGINT is ignored whenever the suite is started in the
    # background by a shell without job control, e.g. `(make test &)`.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def _cxxloop_policy(request):
    # Set before every test: some tests reset the policy in tearDown.
    _current_test[0] = request.node.nodeid
    # Through the seam: 3.14 deprecates asyncio.set_event_loop_policy, and
    # two warnings per test would bury the run's own.
    set_event_loop_policy(cxxloop.EventLoopPolicy())
    # In CPython's own run the policy persists and earlier tests have called
    # set_event_loop(None), so get_event_loop() without a loop raises instead
    # of creating one; some tests (test_create_subprocess_with_pidfd) rely on it.
    asyncio.set_event_loop(None)
    yield
    set_event_loop_policy(None)


def _suite(nodeid):
    cls = nodeid.split("::")[1]
    return cls.split("__")[0]


def _short_id(nodeid):
    # "tests/cpython/test_cpython_asyncio.py::test_tasks__CTask_CFuture_Tests::test_x"
    # -> "test_tasks__CTask_CFuture_Tests::test_x", the key used in skips.py.
    return nodeid.split("::", 1)[1]


def _lookup(table, short_id):
    cls, _, test = short_id.partition("::")
    for key in (short_id, f"*::{test}", cls):
        reason = table.get(key)
        if isinstance(reason, tuple):  # skips.since()
            version, reason = reason
            if sys.version_info < version:
                reason = None
        if reason:
            return reason
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/cpython/" not in item.nodeid:
            continue
        short = _short_id(item.nodeid)
        reason = _lookup(SKIPS, short)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
            continue
        reason = _lookup(HANGS, short)
        if reason:
            item.add_marker(pytest.mark.timeout(HANG_TIMEOUT))
        else:
            reason = _lookup(EXPECTED_FAILURES, short)
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    # A strict xfail judges the test as a whole, but pytest reports each
    # unittest subTest apart, and the passing subtests of an expected failure
    # would count as unexpected passes. Within one, subTest() only runs its
    # block, so the first failing subtest fails the test.
    if item.get_closest_marker("xfail") and isinstance(item.instance, unittest.TestCase):
        item.instance.subTest = lambda *args, **kwargs: contextlib.nullcontext()


def pytest_terminal_summary(terminalreporter):
    counts = collections.defaultdict(collections.Counter)
    for outcome in ("passed", "failed", "skipped", "xfailed", "xpassed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if "tests/cpython/" not in nodeid or (outcome == "passed" and report.when != "call"):
                continue
            kind = "virtual time" if outcome == "passed" and nodeid in _virtual_time_tests else outcome
            counts[_suite(nodeid)][kind] += 1
    if not counts:
        return
    write = terminalreporter.write_line
    write("")
    write("CPython asyncio tests on cxxloop, per suite:")
    total = collections.Counter()
    for suite in sorted(counts):
        total.update(counts[suite])
        write(f"  {suite:28} " + ", ".join(f"{n} {k}" for k, n in sorted(counts[suite].items())))
    write(
        f"cpython asyncio on cxxloop: {total['passed']} passed on cxxloop, "
        f"{total['virtual time']} passed on asyncio's virtual-time TestLoop, "
        f"{total['skipped']} skipped (skips.py or CPython's own), {total['xfailed']} expected failures, "
        f"{total['failed'] + total['error']} failed"
    )
