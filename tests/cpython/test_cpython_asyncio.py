"""CPython's own asyncio tests, run with cxxloop as the event loop.

See suites.py for what is imported, conftest.py for how the loop is
retargeted, and skips.py for every skipped test with its reason.
"""

import importlib
import unittest

import pytest

import cxxloop

try:
    from test.test_asyncio import test_events
    from test.test_asyncio import utils as test_utils
except ImportError:  # e.g. Debian's python3 ships without the test package
    pytest.skip("this interpreter has no test.test_asyncio package (CPython's test suite)", allow_module_level=True)

from .suites import LOOP_GENERIC

# These tests police their own resources; their leaks are reported, not
# turned into errors of unrelated tests as the rest of our suite does.
pytestmark = pytest.mark.filterwarnings(
    "default::ResourceWarning", "default::pytest.PytestUnraisableExceptionWarning"
)


class EventLoopTests(test_events.EventLoopTestsMixin, test_utils.TestCase):
    """asyncio's loop-level behaviour tests, with a cxxloop loop."""

    def create_event_loop(self):
        return cxxloop.new_event_loop()


def _export(module_name):
    try:
        module = importlib.import_module(f"test.test_asyncio.{module_name}")
    except ImportError:
        return  # not in this Python's test package
    for name, obj in vars(module).items():
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase) and obj.__module__ == module.__name__:
            # Subclass so the node id names the suite and pytest's unittest
            # collector sees a class defined here.
            exported = type(f"{module_name}__{name}", (obj,), {"__module__": __name__})
            globals()[exported.__name__] = exported


for _module_name in LOOP_GENERIC:
    _export(_module_name)
